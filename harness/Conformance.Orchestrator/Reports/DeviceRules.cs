using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>The rules, and the report's view of every artifact and mode where a CPU and a CUDA PyTorch disagree.</summary>
public static class DeviceRules
{
    public static readonly IReadOnlyList<DeviceRule> All =
    [
        new("view-past-record",
            "a view's storage_offset reaches past the bytes its storage record holds (TorchSharp.PyBridge's save_py writes views so)",
            ["default", "weights_only", "mmap"],
            "refuses it (\"Trying to resize storage that is not resizable\")",
            "copies the record into a resizable CUDA storage, which the view then reads past",
            "re-save it with contiguous, unshared tensors (TorchSharp: tensor.clone() before save_py), or with torch.save",
            ["pybridge-save-view-offset-cuda-silently-wrong", "pybridge-save-view-offset-deflate-mmap-cuda-silently-wrong"]),
        new("deflated-mmap",
            "its zip entries are deflated, and torch.load(mmap=True) maps each record's raw bytes (torch.save never compresses)",
            ["mmap"],
            "refuses the mapped storage when the compressed record is shorter than the tensor, and returns compressed bytes otherwise",
            "copies the compressed bytes to the device as tensor data",
            "re-save with torch.save (stored entries), or load without mmap",
            ["pybridge-deflate-mmap-cuda-silently-wrong", "pybridge-save-view-offset-deflate-mmap-cuda-silently-wrong"]) { Load = "torch.load(…, map_location='cuda', mmap=True)" },
        new("traced-device",
            "its traced code creates tensors on a fixed device (torch.device(\"cpu\") or (\"cuda:0\") written in; an RNN's initial hidden state, for one), so it runs only on the device it was traced on",
            ["default"],
            "runs a CPU-traced file and fails in forward on a CUDA-traced one",
            "fails in forward on a CPU-traced file (\"Input and hidden tensors are not at the same device\")",
            "script it (torch.jit.script), or trace it on the device it will run on",
            ["pytorch-trace-rnn-bound-to-cpu", "pytorch-trace-rnn-bound-to-cuda"])
        { Effect = "fails in forward if it was traced on another device", Load = "torch.jit.load(…, map_location='cuda')" },
    ];

    /// <summary>The rules whose trait a file shows, from its inventory (<c>check</c>'s, read by the newest PyTorch on the CPU).</summary>
    public static IReadOnlyList<DeviceRule> Detect(string format, JsonNode? inventory)
    {
        var found = new List<DeviceRule>();
        if (inventory is null) return found;
        var error = inventory["inventory_error"]?.GetValue<string>() ?? "";
        // The CPU load keeps each storage as its record wrote it: a view past the record is refused in these words.
        if (format is "torch_zip" or "torch_legacy" && error.Contains("Trying to resize storage that is not resizable", StringComparison.Ordinal)) found.Add(All[0]);
        if ((inventory["deflated_count"]?.GetValue<int>() ?? 0) > 0 && format == "torch_zip") found.Add(All[1]);
        if (format == "torchscript" && inventory["device_constants"] is JsonArray { Count: > 0 }) found.Add(All[2]);
        return found;
    }

    /// <summary>How a PyTorch consumer fared with an artifact, as the device view tells it.</summary>
    public static string? StateOf(CellResult r)
    {
        if (r.Outcome is Outcome.Skipped or Outcome.NotApplicable) return null;
        if (r.Outcome == Outcome.Pass || r.Problems.Count == 0) return r.Outcome == Outcome.Pass ? "loads right" : null;
        if (r.Problems.Any(p => ProblemCodes.IsError(p.Code))) return "refused";
        return r.Problems.Any(p => p.Code is ProblemCodes.Bytes or ProblemCodes.Outputs or ProblemCodes.Dtype or ProblemCodes.Shape) ? "wrong values" : "loads, other problems";
    }

    /// <summary>One artifact and mode where a CUDA PyTorch consumer does not do what the CPU ones do.</summary>
    public sealed record Difference(string Case, string Route, string Producer, string Mode,
        IReadOnlyList<(string Consumer, string State)> Cpu, IReadOnlyList<(string Consumer, string State)> Cuda, DeviceRule? Rule)
    {
        /// <summary>A load that succeeds with wrong values on CUDA where every CPU PyTorch refuses it or reads it right: the worst kind.</summary>
        public bool Silent => Cuda.Any(c => c.State == "wrong values") && Cpu.All(c => c.State != "wrong values");
    }

    /// <summary>Every (case, route, producer, mode) of <paramref name="results"/> where a CUDA PyTorch's state is none of the CPU PyTorches'.</summary>
    public static IReadOnlyList<Difference> Find(IEnumerable<CellResult> results)
    {
        var list = new List<Difference>();
        foreach (var g in results.Where(r => r.Cell.Consumer.StartsWith(RuntimeKinds.PyTorch + "-", StringComparison.Ordinal))
                     .GroupBy(r => (r.Cell.Case, r.Cell.Route, Producer: r.Cell.Producer, r.Cell.Mode)))
        {
            var cpu = new List<(string, string)>();
            var cuda = new List<(string, string)>();
            DeviceRule? rule = null;
            foreach (var r in g.OrderBy(r => r.Cell.Consumer, StringComparer.Ordinal))
            {
                if (StateOf(r) is not { } state) continue;
                if (Runtime.IsAccelerator(Runtime.DeviceOf(r.Cell.Consumer)))
                {
                    cuda.Add((r.Cell.Consumer, state));
                    rule ??= All.FirstOrDefault(x => r.Declared is { } d && x.LedgerEntries.Contains(d.Id));
                }
                else cpu.Add((r.Cell.Consumer, state));
            }
            if (cpu.Count == 0 || cuda.Count == 0) continue;
            if (cuda.All(c => cpu.Any(x => x.Item2 == c.Item2))) continue;
            list.Add(new Difference(g.Key.Case, g.Key.Route, g.Key.Producer, g.Key.Mode, cpu, cuda, rule));
        }
        return list.OrderByDescending(d => d.Silent).ThenBy(d => d.Case, StringComparer.Ordinal).ThenBy(d => d.Route, StringComparer.Ordinal)
            .ThenBy(d => d.Producer, StringComparer.Ordinal).ThenBy(d => d.Mode, StringComparer.Ordinal).ToList();
    }
}
