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
        FormatSummary(Count, LedgerErrors.Count, AwaitingNote(Results.Where(r => r.Outcome == Outcome.Skipped).Select(r => (r.Cell, r.Message))), Seconds);

    /// <summary>
    /// The closing line's one writer, for a run and for merged shards alike (<c>merge</c> counts its results
    /// and calls this): "CONFORMANCE SUITE PASSED: … passes, … known failures, …".
    /// </summary>
    public static string FormatSummary(Func<Outcome, int> count, int ledgerErrors, string awaitingNote, double? seconds)
    {
        var passed = count(Outcome.Fail) == 0 && ledgerErrors == 0;
        return $"CONFORMANCE SUITE {(passed ? "PASSED" : "FAILED")}: {count(Outcome.Pass)} passes, {count(Outcome.KnownFailure)} known failures, "
               + $"{count(Outcome.Fail)} unexpected failures, {count(Outcome.Skipped)} skips{awaitingNote}, {count(Outcome.NotApplicable)} not applicable"
               + (ledgerErrors > 0 ? $", {ledgerErrors} ledger errors" : "")
               + (seconds is { } s ? $" ({s:0.0} s)" : "");
    }
}
