using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// The report's remedy beside PyBridge's failures: a PyBridge cell that fails (known or not) whose twin cell, the
/// same file read by TorchCheckpoints in the same mode (<c>+pybridge</c> → <c>+torchcheckpoints</c>), passes.
/// The words are check's (Verdicts), so a user reads the same advice in both.
/// </summary>
public static class LibraryRemedy
{
    public const string Words = "TorchCheckpoints reads it: StateDict.Load(path), or model.load_pytorch(path)";

    /// <summary>The remedy for one route's files: optimizer_state's folder holds an optimizer's state dict beside the model's.</summary>
    public static string WordsFor(string route) => route == Matrix.Catalogue.OptimizerState
        ? "TorchCheckpoints reads it: model.load_pytorch(path) for the model's file, optimizer.load_pytorch(path) for the optimizer's"
        : Words;

    /// <summary>Per route, the PyBridge cells that fail where TorchCheckpoints reads the same file (as consumer), in plan order.</summary>
    public static IReadOnlyList<(string Route, IReadOnlyList<Cell> Cells)> Find(IReadOnlyList<CellResult> results)
    {
        var byName = results.ToDictionary(r => r.Cell.Name, StringComparer.Ordinal);
        var found = new List<Cell>();
        foreach (var r in results)
        {
            if (r.Outcome is not (Outcome.Fail or Outcome.KnownFailure)) continue;
            if (Runtime.LibraryOf(r.Cell.Consumer) != "pybridge") continue;
            var twin = r.Cell with { Consumer = r.Cell.Consumer.Replace("+pybridge", "+torchcheckpoints", StringComparison.Ordinal) };
            if (byName.TryGetValue(twin.Name, out var t) && t.Outcome == Outcome.Pass) found.Add(r.Cell);
        }
        return found.GroupBy(c => c.Route).Select(g => (g.Key, (IReadOnlyList<Cell>)g.ToList())).ToList();
    }

    /// <summary>The Markdown section, or "" when there is nothing to say.</summary>
    public static string Markdown(IReadOnlyList<CellResult> results)
    {
        var found = Find(results);
        if (found.Count == 0) return "";
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("## Where PyBridge fails and TorchCheckpoints reads the same file").AppendLine();
        sb.AppendLine($"Each of these PyBridge cells fails (known or not) while the same file, read by TorchCheckpoints in the same mode, passes: {Words} (the TorchCheckpoints package).").AppendLine();
        sb.AppendLine("| route | cells | e.g. |").AppendLine("|---|---|---|");
        foreach (var (route, cells) in found) sb.AppendLine($"| `{route}` | {cells.Count} | `{cells[0].Name}` |");
        foreach (var (route, _) in found.Where(f => WordsFor(f.Route) != Words))
            sb.AppendLine().AppendLine($"`{route}`: {WordsFor(route)}.");
        return sb.AppendLine().ToString();
    }
}
