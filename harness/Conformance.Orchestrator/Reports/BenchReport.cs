using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>make bench</c>: the TorchSharp codec against torch.save / torch.load, measured in the same
/// run on the same state dict (100 float32 tensors of 1M elements, ~419 MB), reported as
/// throughput ratios to PyTorch and peak memory as a ratio to the file size. Never a timed test.
/// </summary>
public static class BenchReport
{
    public const int Tensors = 100;
    public const long Elements = 1024 * 1024;

    public static JsonObject Run(IReadOnlyList<Runtime> runtimes, string dir, int repeats, Action<string> log)
    {
        Directory.CreateDirectory(dir);
        var args = new JsonObject { ["dir"] = dir, ["tensors"] = Tensors, ["elements"] = Elements, ["repeats"] = repeats };
        using var pool = new WorkerPool(TimeSpan.FromSeconds(180));
        var results = new JsonObject();
        foreach (var rt in runtimes.Where(r => r.Available && r.Kind is RuntimeKinds.PyTorch or RuntimeKinds.TorchSharp))
        {
            log($"bench: {rt.Id} ({repeats} repeats of save and load, {Tensors} x {Elements} float32)…");
            var reply = pool.Send(rt, "bench", (JsonObject)args.DeepClone(), TimeSpan.FromSeconds(600));
            results[rt.Id] = reply.Result?.DeepClone() ?? new JsonObject { ["error"] = Conformance.Orchestrator.Judgement.CellJudge.FromReply(reply, null, rt.Id).Line };
        }
        return new JsonObject { ["tensors"] = Tensors, ["elements"] = Elements, ["repeats"] = repeats, ["results"] = results };
    }

    private static double Gbps(JsonNode? r, string op, string bytesField = "file_bytes") =>
        r?[bytesField]?.GetValue<long>() / r?[op]?["seconds"]?.GetValue<double>() / 1e9 ?? double.NaN;

    private static double PeakRatio(JsonNode? r, string op, string bytesField = "file_bytes") =>
        (double)(r?[op]?["peak_bytes"]?.GetValue<long>() ?? 0) / (r?[bytesField]?.GetValue<long>() ?? 1);

    /// <summary>The table a person reads: GB/s, ratio to each PyTorch, peak memory / file size.</summary>
    public static string Markdown(JsonObject bench)
    {
        var results = bench["results"]!.AsObject();
        var codec = results.FirstOrDefault(kv => kv.Key.StartsWith(RuntimeKinds.TorchSharp, StringComparison.Ordinal)).Value;
        var torches = results.Where(kv => kv.Key.StartsWith(RuntimeKinds.PyTorch, StringComparison.Ordinal)).ToList();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# Checkpoint codec benchmark ({bench["tensors"]} x {bench["elements"]} float32, median of {bench["repeats"]})").AppendLine();
        sb.AppendLine("| writer / reader | write GB/s | read GB/s | write peak / file | read peak / file |").AppendLine("|---|---|---|---|---|");
        void Row(string name, JsonNode? r, string save = "save", string load = "load", string bytes = "file_bytes") =>
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Gbps(r, save, bytes):0.00} | {Gbps(r, load, bytes):0.00} | {PeakRatio(r, save, bytes):0.00} | {PeakRatio(r, load, bytes):0.00} |");
        foreach (var (id, r) in torches) Row($"{id} torch.save / torch.load", r);
        if (codec is not null)
        {
            Row("TorchSharp codec (this project)", codec);
            Row("TorchSharp.PyBridge save_py / load_py (1 run)", codec, "pybridge_save", "pybridge_load", "pybridge_file_bytes");
            sb.AppendLine();
            sb.AppendLine("| ratio: codec throughput / PyTorch's | write | read | goal |").AppendLine("|---|---|---|---|");
            foreach (var (id, r) in torches)
                sb.AppendLine(CultureInfo.InvariantCulture, $"| vs {id} | {Gbps(codec, "save") / Gbps(r, "save"):0.00}x | {Gbps(codec, "load") / Gbps(r, "load"):0.00}x | ≥ 1.00x |");
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"Codec peak memory / file size: write {PeakRatio(codec, "save"):0.00}, read {PeakRatio(codec, "load"):0.00} (goal ≤ 1.30).");
        }
        foreach (var (id, r) in results.Where(kv => kv.Value?["error"] is not null)) sb.AppendLine($"\n{id}: {r!["error"]}");
        return sb.ToString();
    }

    public static void Write(JsonObject bench, string dir)
    {
        Directory.CreateDirectory(dir);
        DurableFile.WriteText(Path.Combine(dir, "bench.json"), bench.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        DurableFile.WriteText(Path.Combine(dir, "bench.md"), Markdown(bench));
    }
}
