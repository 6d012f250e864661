using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Files;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>make bench</c>: the TorchSharp codec against torch.save / torch.load, measured in the same
/// run on the same state dicts, reported as throughput ratios to PyTorch, peak memory as a ratio to
/// the file size, and beside them what the machine allows for the same bytes (page-cache read and
/// write, fsync, memcpy). Two sizes: 100 float32 tensors of 1M elements (~419 MB, median of 3) and
/// 17 of 64M (~4.6 GB, so zip64; once); <c>BENCH_SIZES</c> and <c>BENCH_REPEATS</c> choose others
/// (<see cref="Sizes"/>). Never a timed test.
/// <para>Like for like, each pair timed in the same run: the codec's durable save (fsync of the file;
/// it does not fsync the folder) against torch.save + os.fsync of the file; the codec's save with
/// <c>durable: false</c> against torch.save; Load (CRC-checked) against torch.load(weights_only=True);
/// LoadMapped(verifyCrc: true) + reading every tensor once against torch.load(mmap=True) + the same.
/// Each row gives both times, PyTorch's / the codec's, the goal (≥ 1.5x), and the limit that bounds
/// the step with the best ratio it leaves (PyTorch's time / the limit's), so a goal out of physical
/// reach shows as such.</para>
/// </summary>
public static class BenchReport
{
    public const int Tensors = 100;
    public const long Elements = 1024 * 1024;
    public const int LargeTensors = 17;
    public const long LargeElements = 64L * 1024 * 1024;
    public const double Goal = 1.5;
    public const double PeakGoal = 1.05;

    /// <summary>One state dict to measure: <paramref name="Tensors"/> float32 tensors of <paramref name="Elements"/> each.</summary>
    public sealed record Size(string Name, int Tensors, long Elements, int Repeats, bool PyBridge);

    /// <summary>
    /// The sizes to run. <paramref name="spec"/> (<c>BENCH_SIZES</c>): names and shapes separated by
    /// commas or spaces: <c>standard</c> (100 x 1M, median of 3, with PyBridge), <c>large</c> (17 x
    /// 64M, once), or <c>TENSORSxELEMENTS</c> (say <c>8x262144</c>, median of 3). Empty: standard and
    /// large (standard alone when <paramref name="large"/> is false, <c>CONFORMANCE_BENCH_LARGE=0</c>).
    /// <paramref name="repeats"/> (<c>BENCH_REPEATS</c>), when given, replaces every size's repeat count.
    /// </summary>
    public static IReadOnlyList<Size> Sizes(string? spec, string? repeats = null, bool large = true)
    {
        int? times = string.IsNullOrWhiteSpace(repeats) ? null
            : int.TryParse(repeats, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n
            : throw new ArgumentException($"BENCH_REPEATS={repeats}: expected a positive whole number");
        var tokens = (spec ?? "").Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (tokens.Length == 0) tokens = large ? ["standard", "large"] : ["standard"];
        return tokens.Select(t =>
        {
            var size = t switch
            {
                "standard" => new Size("standard", Tensors, Elements, 3, PyBridge: true),
                "large" => new Size("large", LargeTensors, LargeElements, 1, PyBridge: false),
                _ when t.Split('x') is [var a, var b] && int.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k > 0
                                                        && long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var e) && e > 0
                    => new Size(t, k, e, 3, PyBridge: false),
                _ => throw new ArgumentException($"BENCH_SIZES: '{t}' is not standard, large or TENSORSxELEMENTS (say 8x262144)"),
            };
            return times is { } r ? size with { Repeats = r } : size;
        }).ToList();
    }

    public static JsonObject Run(IReadOnlyList<Runtime> runtimes, string dir, IReadOnlyList<Size> sizes, Action<string> log)
    {
        Directory.CreateDirectory(dir);
        var results = new JsonObject();
        foreach (var size in sizes)
            results[size.Name] = RunSize(runtimes, dir, size.Tensors, size.Elements, size.Repeats, size.PyBridge, log);
        return new JsonObject { ["sizes"] = results };
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

    private static string X(double ratio) => double.IsNaN(ratio) ? "–" : F(ratio) + "x";

    private static double Seconds(JsonNode? r, string op) => r?[op]?["seconds"]?.GetValue<double>() ?? double.NaN;

    private static string Time(double seconds) =>
        double.IsNaN(seconds) ? "–" : seconds < 1 ? F(seconds * 1000, "0.0") + " ms" : F(seconds, "0.00") + " s";

    /// <summary>The pairs, in order: the codec's step and PyTorch's (the same key on both sides), in words,
    /// and the machine limit that bounds it (keys of the TorchSharp worker's "limits"; the first one present).</summary>
    internal static readonly (string Op, string Step, string Limit, string[] LimitKeys)[] Pairs =
    [
        ("save_durable", "save, durable: Save (fsyncs the file) / torch.save + os.fsync of the file", "write + fsync of as many bytes (the disk's write bandwidth)", ["write_fsync"]),
        ("save", "save, not durable: Save(durable: false) / torch.save", "write to the page cache", ["write_page_cache"]),
        ("load", "load: Load (CRC checked) / torch.load(weights_only=True)", "read into fresh memory, all cores", ["read_fresh_memory_all_cores", "memcpy_fresh_memory"]),
        ("load_mmap_touch", "mmap + touch: LoadMapped(verifyCrc: true) / torch.load(mmap=True), then a sum of every tensor", "map the file and read every byte, all cores", ["mmap_read_all_cores", "read_page_cache_all_cores"]),
    ];

    /// <summary>The tables a person reads: the like-for-like pairs against each PyTorch (times, ratio,
    /// goal, limit), peak memory against the file, GB/s, and the machine's limits.</summary>
    public static string Markdown(JsonObject bench)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Checkpoint codec benchmark").AppendLine();
        sb.AppendLine("Each pair is timed in the same run, on the same state dict, in one process per runtime: the codec's step and PyTorch's " +
                      "like for like. *PyTorch / codec* is PyTorch's time over the codec's (goal ≥ 1.50x); *the limit allows* is PyTorch's time " +
                      "over the machine limit's for the same bytes: the best ratio any implementation bound by that limit could reach. " +
                      "Before every timed run the target is removed and the page cache synced (untimed), on both sides. " +
                      "Throughput is file bytes per second; *mmap + touch* loads memory-mapped and then reads every element.").AppendLine();
        foreach (var (name, size) in bench["sizes"]!.AsObject())
            RenderSize(sb, name, size!.AsObject());
        return sb.ToString();
    }

    private static void RenderSize(StringBuilder sb, string name, JsonObject bench)
    {
        var results = bench["results"]!.AsObject();
        var codec = results.FirstOrDefault(kv => kv.Key.StartsWith(RuntimeKinds.TorchSharp, StringComparison.Ordinal)).Value;
        if (codec?["error"] is not null) codec = null;
        var torches = results.Where(kv => kv.Key.StartsWith(RuntimeKinds.PyTorch, StringComparison.Ordinal) && kv.Value?["error"] is null).ToList();
        long bytes = codec?["file_bytes"]?.GetValue<long>() ?? torches.Select(t => t.Value?["file_bytes"]?.GetValue<long>() ?? 0).FirstOrDefault();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"## {name}: {bench["tensors"]} x {bench["elements"]!.GetValue<long>():N0} float32, {bytes / 1e9:0.00} GB, {(bench["repeats"]!.GetValue<int>() == 1 ? "one run" : $"median of {bench["repeats"]}")}").AppendLine();
        var limits = codec?["limits"];
        double LimitSeconds(string[] keys) =>
            keys.Select(k => limits?[k]?["seconds"]?.GetValue<double>()).FirstOrDefault(v => v is not null) ?? double.NaN;

        if (codec is not null && torches.Count > 0)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| step | codec | PyTorch | PyTorch's time | PyTorch / codec | goal ≥ {Goal:0.00}x | limit (same bytes) | limit's time | the limit allows |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var (op, step, limit, keys) in Pairs)
                foreach (var (id, r) in torches)
                {
                    double c = Seconds(codec, op), t = Seconds(r, op), l = LimitSeconds(keys);
                    double ratio = t / c, allows = t / l;
                    string goal = double.IsNaN(ratio) ? (r?[op] is null ? $"– ({id} has no such step)" : "–")
                        : ratio >= Goal ? "met"
                        : l > Math.Min(c, t) ? "not met (the limit measured slower than the step itself: a noisy run)"
                        : allows < Goal ? $"not met: out of reach, the limit allows {F(allows)}x"
                        : "not met";
                    sb.AppendLine(CultureInfo.InvariantCulture,
                        $"| {step} | {Time(c)} | {id} | {Time(t)} | {X(ratio)} | {goal} | {limit} | {Time(l)} | {X(allows)} |");
                }
            sb.AppendLine();

            sb.AppendLine(CultureInfo.InvariantCulture, $"Peak memory of a load (resident high-water mark above the start) / file size, goal ≤ {PeakGoal:0.00}:").AppendLine();
            sb.AppendLine("| reader | load peak / file | goal | mmap + touch peak / file |").AppendLine("|---|---|---|---|");
            void PeakRow(string label, JsonNode? r)
            {
                double load = PeakRatio(r, "load");
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {label} | {F(load)} | {(double.IsNaN(load) ? "–" : load <= PeakGoal ? "met" : "not met")} | {F(PeakRatio(r, "load_mmap_touch"))} |");
            }
            PeakRow("TorchSharp codec", codec);
            foreach (var (id, r) in torches) PeakRow(id, r);
            sb.AppendLine();

            static string Crc(JsonNode? r) => r?["crc_checked"] is { } c
                ? $"load {(c["load"]?.GetValue<bool>() == true ? "yes" : "no")}, mmap {(c["load_mmap"] is { } m ? m.GetValue<bool>() ? "yes" : "no" : "–")}"
                : "not probed";
            sb.AppendLine("CRC-32 of each record checked (probed in this run: one flipped byte inside a record of a small file, then each load): " +
                          string.Join("; ", new[] { $"codec: {Crc(codec)}" }.Concat(torches.Select(t => $"{t.Key}: {Crc(t.Value)}"))) + ".").AppendLine();
        }

        sb.AppendLine("| writer / reader | save GB/s | durable save GB/s | load GB/s | mmap + touch GB/s | save peak / file | load peak / file |").AppendLine("|---|---|---|---|---|---|---|");
        void Row(string label, JsonNode? r, string save = "save", string load = "load", string mmap = "load_mmap_touch", string bytesField = "file_bytes", string durable = "save_durable") =>
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {label} | {F(Gbps(r, save, bytesField))} | {F(Gbps(r, durable, bytesField))} | {F(Gbps(r, load, bytesField))} | {F(Gbps(r, mmap, bytesField))} | {F(PeakRatio(r, save, bytesField))} | {F(PeakRatio(r, load, bytesField))} |");
        foreach (var (id, r) in torches) Row($"{id} torch.save / torch.load", r);
        if (codec is not null)
        {
            Row("TorchSharp codec (TorchCheckpoints)", codec);
            sb.AppendLine(CultureInfo.InvariantCulture, $"| TorchSharp codec, mmap without CRC check | | | | {F(Gbps(codec, "load_mmap_nocrc_touch"))} | | |");
            if (codec["pybridge_save"] is not null)
                Row("TorchSharp.PyBridge save_py / load_py (1 run)", codec, "pybridge_save", "pybridge_load", "-", "pybridge_file_bytes", "-");
            sb.AppendLine();
            if (limits is not null)
            {
                double L(string k) => bytes / (limits[k]?["seconds"]?.GetValue<double>() ?? double.NaN) / 1e9;
                sb.AppendLine(CultureInfo.InvariantCulture, $"What this machine allows for the same bytes ({limits["cores"]} cores), measured in the same run:").AppendLine();
                sb.AppendLine("| operation | GB/s | codec's comparable step | codec / limit |").AppendLine("|---|---|---|---|");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| read from the page cache, 1 thread | {F(L("read_page_cache"))} | load | {F(Gbps(codec, "load") / L("read_page_cache"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| read from the page cache, all cores | {F(L("read_page_cache_all_cores"))} | load | {F(Gbps(codec, "load") / L("read_page_cache_all_cores"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| map the file and read every byte, all cores | {F(L("mmap_read_all_cores"))} | mmap + touch | {F(Gbps(codec, "load_mmap_touch") / L("mmap_read_all_cores"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| read into fresh memory, all cores | {F(L("read_fresh_memory_all_cores"))} | load | {F(Gbps(codec, "load") / L("read_fresh_memory_all_cores"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| memcpy into fresh memory (page faults) | {F(L("memcpy_fresh_memory"))} | load | {F(Gbps(codec, "load") / L("memcpy_fresh_memory"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| write to the page cache | {F(L("write_page_cache"))} | save, not durable | {F(Gbps(codec, "save") / L("write_page_cache"))} |");
                sb.AppendLine(CultureInfo.InvariantCulture, $"| write and fsync (the disk) | {F(L("write_fsync"))} | save, durable | {F(Gbps(codec, "save_durable") / L("write_fsync"))} |");
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
