using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// A way a file loads otherwise on a GPU than on the CPU in PyTorch, learnt from a real GPU run: what
/// in the file causes it (<see cref="Trait"/>, which <see cref="Detect"/> finds in a file's inventory),
/// the load modes it touches, what the CPU and CUDA do, and the ledger entries that declare its cells.
/// <c>conformance check</c> warns with it on a user's file and the report's device-difference view
/// names it beside each cell where it shows: one rule, both places.
/// </summary>
public sealed record DeviceRule(string Id, string Trait, IReadOnlyList<string> Modes, string OnCpu, string OnCuda, string Remedy, IReadOnlyList<string> LedgerEntries)
{
    /// <summary>What the load does on the device: for a silent rule, wrong values without an error.</summary>
    public string Effect { get; init; } = "loads with wrong values, without an error";

    /// <summary>How the load is written, as a user would call it.</summary>
    public string Load { get; init; } = "torch.load(…, map_location='cuda')";

    /// <summary>The line <c>check</c> prints for a file with this trait.</summary>
    public string Warning =>
        $"⚠ on a GPU ({Load}) this file {Effect}: {Trait}. On the CPU, PyTorch {OnCpu}. Remedy: {Remedy}";
}
