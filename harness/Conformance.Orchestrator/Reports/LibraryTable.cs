using System.Text;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// Per route, a row per TorchSharp side: each .NET library on a state-dict route (PyBridge next to
/// TorchCheckpoints), TorchSharp itself on its own routes; columns by direction. Each count is
/// pass / known failure / unexpected failure over every case and mode; skipped and not-applicable cells
/// are left out. TorchSharp → TorchSharp counts the cells a library reads, from either library's files.
/// The README's overview (written from the committed baseline) and every report show it.
/// </summary>
public static class LibraryTable
{
    public static readonly IReadOnlyList<string> Directions = ["PyTorch → TorchSharp", "TorchSharp → PyTorch", "TorchSharp → TorchSharp", "PyTorch → PyTorch"];

    /// <summary>The library a TorchSharp row names: cases.json's libraries by their names there, or TorchSharp for a bare runtime.</summary>
    public static string SideName(string? library) =>
        library is null ? "TorchSharp" : Catalogue.Libraries.FirstOrDefault(l => l.Id == library).Name ?? library;

    /// <summary>The rows: (route, side, one "p / k / f" per direction, or "—"), routes in first-seen order, PyBridge before TorchCheckpoints.</summary>
    public static IReadOnlyList<(string Route, string Side, IReadOnlyList<string> Counts)> Rows(IEnumerable<(string Cell, string Outcome)> cells)
    {
        var counts = new Dictionary<(string Route, string? Side, string Direction), Dictionary<string, int>>();
        var sides = new Dictionary<string, List<string?>>();
        var routes = new List<string>();
        foreach (var (name, outcome) in cells)
        {
            Cell cell;
            try { cell = Cell.Parse(name); } catch (FormatException) { continue; }
            var (pk, ck) = (Kind(cell.Producer), Kind(cell.Consumer));
            if (pk is null || ck is null) continue;
            var direction = $"{(pk == RuntimeKinds.PyTorch ? "PyTorch" : "TorchSharp")} → {(ck == RuntimeKinds.PyTorch ? "PyTorch" : "TorchSharp")}";
            // The row: the TorchSharp side's library (the reader's when both are TorchSharp); PyTorch → PyTorch on every row of the route.
            string? side = ck == RuntimeKinds.TorchSharp ? Runtime.LibraryOf(cell.Consumer) : pk == RuntimeKinds.TorchSharp ? Runtime.LibraryOf(cell.Producer) : "*";
            if (!routes.Contains(cell.Route)) { routes.Add(cell.Route); sides[cell.Route] = []; }
            if (side != "*" && !sides[cell.Route].Contains(side)) sides[cell.Route].Add(side);
            var key = (cell.Route, side, direction);
            if (!counts.TryGetValue(key, out var c)) counts[key] = c = [];
            c[outcome] = c.GetValueOrDefault(outcome) + 1;
        }
        var rows = new List<(string, string, IReadOnlyList<string>)>();
        foreach (var route in routes)
        {
            var order = Catalogue.Libraries.Select(l => (string?)l.Id).ToList();
            var routeSides = sides[route].OrderBy(s => s is null ? -1 : order.IndexOf(s)).ToList();
            if (routeSides.Count == 0) routeSides.Add(null);
            foreach (var side in routeSides)
                rows.Add((route, SideName(side), Directions.Select(d => Format(counts.GetValueOrDefault((route, d == "PyTorch → PyTorch" ? "*" : side, d)))).ToList()));
        }
        return rows;
    }

    private static string? Kind(string id) =>
        id.StartsWith(RuntimeKinds.PyTorch + "-", StringComparison.Ordinal) ? RuntimeKinds.PyTorch
        : id.StartsWith(RuntimeKinds.TorchSharp + "-", StringComparison.Ordinal) ? RuntimeKinds.TorchSharp : null;

    private static string Format(Dictionary<string, int>? c)
    {
        int P(string o) => c?.GetValueOrDefault(o) ?? 0;
        return c is null || P("pass") + P("known_failure") + P("fail") == 0 ? "—"
            : $"{P("pass")} / {P("known_failure")} / {(P("fail") > 0 ? $"**{P("fail")}**" : "0")}";
    }

    /// <summary>The table in Markdown: a route's name on its first row only.</summary>
    public static string Markdown(IEnumerable<(string Cell, string Outcome)> cells)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| route | TorchSharp side | " + string.Join(" | ", Directions) + " |");
        sb.AppendLine("|---|---|" + string.Concat(Directions.Select(_ => "---|")));
        string? last = null;
        foreach (var (route, side, counts) in Rows(cells))
        {
            sb.AppendLine($"| {(route == last ? "" : $"`{route}`")} | {side} | {string.Join(" | ", counts)} |");
            last = route;
        }
        return sb.ToString();
    }

    /// <summary>The cells of a run as (name, outcome word as in the JSON report).</summary>
    public static IEnumerable<(string Cell, string Outcome)> Of(IEnumerable<Ledger.CellResult> results) =>
        results.Select(r => (r.Cell.Name, r.Outcome.Wire()));
}
