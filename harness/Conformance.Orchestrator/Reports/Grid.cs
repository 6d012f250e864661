using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// The matrix as a person reads it: one table per (case, route), a row per direction
/// (producer -> consumer), a column per load mode. Shared by the console, Markdown and HTML views.
/// </summary>
public sealed record Grid(string Case, string Route, IReadOnlyList<string> Modes, IReadOnlyList<GridRow> Rows)
{
    public static IReadOnlyList<Grid> From(IReadOnlyList<CellResult> results) =>
        results.GroupBy(r => (r.Cell.Case, r.Cell.Route)).Select(g =>
        {
            var modes = g.Select(r => r.Cell.Mode).Distinct().ToList();
            var rows = g.GroupBy(r => (r.Cell.Producer, r.Cell.Consumer)).Select(d => new GridRow(
                d.Key.Producer, d.Key.Consumer,
                modes.Select(m => d.FirstOrDefault(r => r.Cell.Mode == m)).ToList())).ToList();
            return new Grid(g.Key.Case, g.Key.Route, modes, rows);
        }).ToList();

    /// <summary>A short word for a cell: pass (with the largest output difference), FAIL, known, n/a, skip.</summary>
    public static string Word(CellResult? r) => r?.Outcome switch
    {
        null => "",
        Outcome.Pass => r.Diff is { MaxAbs: > 0 } d ? $"pass Δ{d.MaxAbs:0.0e0}" : "pass =",
        Outcome.Fail => "FAIL",
        Outcome.KnownFailure => "known",
        Outcome.NotApplicable => "n/a",
        Outcome.Skipped => "skip",
        _ => "?",
    };
}
