using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// The one-screen overview: a row per case, a column per route; each cell counts its outcomes
/// over every direction and mode ("40 ✓ 4 ⚠ 1 ✗").
/// </summary>
public sealed record Overview(IReadOnlyList<string> Routes, IReadOnlyList<(string Case, IReadOnlyList<string> Cells)> Rows)
{
    public static Overview From(IReadOnlyList<CellResult> results) => By(results, r => r.Cell.Case);

    /// <summary>A row per direction (producer -> consumer), so each runtime's rows are read at a glance.</summary>
    public static Overview ByDirection(IReadOnlyList<CellResult> results) => By(results, r => $"{r.Cell.Producer} -> {r.Cell.Consumer}");

    private static Overview By(IReadOnlyList<CellResult> results, Func<CellResult, string> row)
    {
        var routes = results.Select(r => r.Cell.Route).Distinct().ToList();
        var rows = results.GroupBy(row).Select(g => (g.Key,
            (IReadOnlyList<string>)routes.Select(route => Summary(g.Where(r => r.Cell.Route == route).ToList())).ToList())).ToList();
        return new Overview(routes, rows);
    }

    /// <summary>Counts in reading order: passes, known failures, unexpected failures, not applicable, skips.</summary>
    public static string Summary(IReadOnlyList<CellResult> cells)
    {
        var parts = new List<string>();
        void Add(Outcome o, string mark)
        {
            int n = cells.Count(c => c.Outcome == o);
            if (n > 0) parts.Add($"{n} {mark}");
        }
        Add(Outcome.Pass, "pass");
        Add(Outcome.KnownFailure, "known");
        Add(Outcome.Fail, "FAIL");
        Add(Outcome.NotApplicable, "n/a");
        Add(Outcome.Skipped, "skip");
        return string.Join(", ", parts);
    }
}
