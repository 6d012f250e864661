using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Runs;

public sealed record RunResult(
    IReadOnlyList<RuntimeReport> Runtimes,
    IReadOnlyList<CellResult> Results,
    IReadOnlyList<LedgerError> LedgerErrors,
    DateTimeOffset Started,
    double Seconds)
{
    public Selection Selection { get; init; } = Selection.All;

    public RunnerOptions? Options { get; init; }

    public int Count(Outcome o) => Results.Count(r => r.Outcome == o);

    public bool Passed => Count(Outcome.Fail) == 0 && LedgerErrors.Count == 0;

    /// <summary>
    /// " (N await a GPU: torchsharp-0.107-cuda)" when skipped cells wait for a device backend this
    /// machine cannot have (<see cref="Runtime.NoTorchSharpCuda"/>); empty otherwise. They never fail a run.
    /// </summary>
    public static string AwaitingNote(IEnumerable<(Cell Cell, string Message)> skipped)
    {
        var awaiting = skipped.Where(s => s.Message.Contains(Runtime.NoTorchSharpCuda, StringComparison.Ordinal)).ToList();
        if (awaiting.Count == 0) return "";
        var ids = awaiting.SelectMany(s => new[] { s.Cell.Producer, s.Cell.Consumer }).Where(id => Runtime.IsAccelerator(Runtime.DeviceOf(id)) && !GoldenFixture.IsGolden(id))
            .Distinct().Order(StringComparer.Ordinal);
        return $" ({awaiting.Count} await a GPU: {string.Join(", ", ids)}, {Runtime.NoTorchSharpCuda.Split(" (")[0]})";
    }

    /// <summary>The run's one closing line, in the manner of protobuf's conformance runner.</summary>
    public string SummaryLine() =>
        $"CONFORMANCE SUITE {(Passed ? "PASSED" : "FAILED")}: {Count(Outcome.Pass)} passes, {Count(Outcome.KnownFailure)} known failures, "
        + $"{Count(Outcome.Fail)} unexpected failures, {Count(Outcome.Skipped)} skips{AwaitingNote(Results.Where(r => r.Outcome == Outcome.Skipped).Select(r => (r.Cell, r.Message)))}, "
        + $"{Count(Outcome.NotApplicable)} not applicable"
        + (LedgerErrors.Count > 0 ? $", {LedgerErrors.Count} ledger errors" : "")
        + $" ({Seconds:0.0} s)";
}
