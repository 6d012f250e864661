using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>make bench</c>: the TorchSharp codec against torch.save / torch.load, measured in the same
/// run on the same state dicts, reported as throughput ratios to PyTorch, peak memory as a ratio to
/// the file size, and beside them what the machine allows for the same bytes (page-cache read and
/// write, fsync, memcpy). Two sizes: 100 float32 tensors of 1M elements (~419 MB, median of 3) and
/// 17 of 64M (~4.6 GB, so zip64; once). Never a timed test.
/// </summary>
public static class BenchReport
{
    public const int Tensors = 100;
    public const long Elements = 1024 * 1024;
    public const int LargeTensors = 17;
    public const long LargeElements = 64L * 1024 * 1024;

    public static JsonObject Run(IReadOnlyList<Runtime> runtimes, string dir, int repeats, Action<string> log, bool large = true)
    {
        Directory.CreateDirectory(dir);
        var sizes = new JsonObject { ["standard"] = RunSize(runtimes, dir, Tensors, Elements, repeats, pybridge: true, log) };
        if (large)
            sizes["large"] = RunSize(runtimes, dir, LargeTensors, LargeElements, 1, pybridge: false, log);
        return new JsonObject { ["sizes"] = sizes };
    }

    private static JsonObject RunSize(IReadOnlyList<Runtime> runtimes, string dir, int tensors, long elements, int repeats, bool pybridge, Action<string> log)
    {
        var args = new JsonObject { ["dir"] = dir, ["tensors"] = tensors, ["elements"] = elements, ["repeats"] = repeats, ["pybridge"] = pybridge };
        var results = new JsonObject();
        foreach (var rt in runtimes.Where(r => r.Available && r.Kind is RuntimeKinds.PyTorch or RuntimeKinds.TorchSharp))
        {
            using var pool = new WorkerPool(TimeSpan.FromSeconds(180)); // one process per runtime and size: its memory goes back after
            log($"bench: {rt.Id} ({repeats} x save and load of {tensors} x {elements:N0} float32)…");
            var reply = pool.Send(rt, "bench", (JsonObject)args.DeepClone(), TimeSpan.FromSeconds(900));
            results[rt.Id] = reply.Result?.DeepClone() ?? new JsonObject { ["error"] = Conformance.Orchestrator.Judgement.CellJudge.FromReply(reply, null, rt.Id).Line };
        }
        return new JsonObject { ["tensors"] = tensors, ["elements"] = elements, ["repeats"] = repeats, ["results"] = results };
    }

    private static double Gbps(JsonNode? r, string op, string bytesField = "file_bytes") =>
        r?[bytesField]?.GetValue<long>() / r?[op]?["seconds"]?.GetValue<double>() / 1e9 ?? double.NaN;

    private static double PeakRatio(JsonNode? r, string op, string bytesField = "file_bytes") =>
        r?[op] is null ? double.NaN : (double)(r[op]!["peak_bytes"]?.GetValue<long>() ?? 0) / (r[bytesField]?.GetValue<long>() ?? 1);

    private static string F(double v, string format = "0.00") => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>The tables a person reads: GB/s, ratios to each PyTorch, peak memory / file size, the machine's limits.</summary>
    public static string Markdown(JsonObject bench)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Checkpoint codec benchmark").AppendLine();
        sb.AppendLine("Throughput is file bytes per second; *mmap + touch* loads memory-mapped and then reads every element. " +
                      "The codec's save writes a temporary file, fsyncs it and renames it (torch.save does not fsync).").AppendLine();
        foreach (var (name, size) in bench["sizes"]!.AsObject())
            Size(sb, name, size!.AsObject());
        return sb.ToString();
    }

    private static void Size(StringBuilder sb, string name, JsonObject bench)
    {
        var results = bench["results"]!.AsObject();
        var codec = results.FirstOrDefault(kv => kv.Key.StartsWith(RuntimeKinds.TorchSharp, StringComparison.Ordinal)).Value;
        var torches = results.Where(kv => kv.Key.StartsWith(RuntimeKinds.PyTorch, StringComparison.Ordinal) && kv.Value?["error"] is null).ToList();
        long bytes = codec?["file_bytes"]?.GetValue<long>() ?? torches.Select(t => t.Value?["file_bytes"]?.GetValue<long>() ?? 0).FirstOrDefault();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"## {name}: {bench["tensors"]} x {bench["elements"]!.GetValue<long>():N0} float32, {bytes / 1e9:0.00} GB, {(bench["repeats"]!.GetValue<int>() == 1 ? "one run" : $"median of {bench["repeats"]}")}").AppendLine();
        sb.AppendLine("| writer / reader | save GB/s | load GB/s | mmap + touch GB/s | save peak / file | load peak / file |").AppendLine("|---|---|---|---|---|---|");
        void Row(string label, JsonNode? r, string save = "save", string load = "load", string mmap = "load_mmap_touch", string bytesField = "file_bytes") =>
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {label} | {F(Gbps(r, save, bytesField))} | {F(Gbps(r, load, bytesField))} | {F(Gbps(r, mmap, bytesField))} | {F(PeakRatio(r, save, bytesField))} | {F(PeakRatio(r, load, bytesField))} |");
        foreach (var (id, r) in torches) Row($"{id} torch.save / torch.load", r);
        if (codec?["error"] is null && codec is not null)
        {
            Row("TorchSharp codec (TorchCheckpoints)", codec);
            sb.AppendLine(CultureInfo.InvariantCulture, $"| TorchSharp codec, mmap without CRC check | | | {F(Gbps(codec, "load_mmap_nocrc_touch"))} | | |");
            if (codec["pybridge_save"] is not null)
                Row("TorchSharp.PyBridge save_py / load_py (1 run)", codec, "pybridge_save", "pybridge_load", "-", "pybridge_file_bytes");
            sb.AppendLine();
            sb.AppendLine("| codec throughput / PyTorch's | save | load | mmap + touch | goal |").AppendLine("|---|---|---|---|---|");
            foreach (var (id, r) in torches)
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| vs {id} | {F(Gbps(codec, "save") / Gbps(r, "save"))}x | {F(Gbps(codec, "load") / Gbps(r, "load"))}x | {F(Gbps(codec, "load_mmap_touch") / Gbps(r, "load_mmap_touch"))}x | ≥ 1.50x |");
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"Codec peak memory / file size: save {F(PeakRatio(codec, "save"))}, load {F(PeakRatio(codec, "load"))} (goal ≤ 1.05).").AppendLine();
            if (codec["limits"] is { } limits)
            {
                double L(string k) => bytes / (limits[k]?["seconds"]?.GetValue<double>() ?? double.NaN) / 1e9;
                sb.AppendLine(CultureInfo.InvariantCulture, $"What this machine allows for the same bytes ({limits["cores"]} cores), measured in the same run:").AppendLine();
                sb.AppendLine("| operation | GB/s | codec's comparable step | codec / limit |").AppendLine("|---|---|---|---|");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| read from the page cache, 1 thread | {F(L("read_page_cache"))} | load | {F(Gbps(codec, "load") / L("read_page_cache"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| read from the page cache, all cores | {F(L("read_page_cache_all_cores"))} | load | {F(Gbps(codec, "load") / L("read_page_cache_all_cores"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| memcpy into fresh memory (page faults) | {F(L("memcpy_fresh_memory"))} | load | {F(Gbps(codec, "load") / L("memcpy_fresh_memory"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| write to the page cache | {F(L("write_page_cache"))} | save without fsync | – |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| write and fsync | {F(L("write_fsync"))} | save | {F(Gbps(codec, "save") / L("write_fsync"))} |");
            }
        }
        foreach (var (id, r) in results.Where(kv => kv.Value?["error"] is not null)) sb.AppendLine($"\n{id}: {r!["error"]}");
        sb.AppendLine();
    }
    public static void Write(JsonObject bench, string dir)
    {
        Directory.CreateDirectory(dir);
        DurableFile.WriteText(Path.Combine(dir, "bench.json"), bench.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        DurableFile.WriteText(Path.Combine(dir, "bench.md"), Markdown(bench));
    }
}
