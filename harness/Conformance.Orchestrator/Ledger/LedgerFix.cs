using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// `conformance ledger [--fix]`: reads a run's compatibility.json and the ledger. --fix rewrites
/// what a machine can decide from a complete run (drops entries that declare nothing that fails,
/// drops expected problems no cell shows, sets max_cells to the cells declared) and prints each
/// change; what needs a person (an entry with some cells now passing to narrow, a cell failing otherwise) it lists
/// and leaves. It refuses a filtered or sharded run: absence of evidence there is not evidence.
/// </summary>
public static class LedgerFix
{
    public static IReadOnlyList<EntryUse> Uses(FailureLedger ledger, JsonNode report)
    {
        var byId = new Dictionary<string, List<(string, string, string, IReadOnlyList<Problem>)>>();
        foreach (var r in report["results"]?.AsArray() ?? [])
        {
            if (r?["known_failure"]?["id"]?.GetValue<string>() is not { } id) continue;
            var problems = (r["problems"]?.AsArray() ?? []).Select(p => new Problem(
                p!["code"]!.GetValue<string>(), p["subject"]?.GetValue<string>() ?? "", p["message"]!.GetValue<string>())
            { Measure = p["measure"]?.GetValue<double>() }).ToList();
            if (!byId.TryGetValue(id, out var list)) byId[id] = list = [];
            list.Add((r["cell"]!.GetValue<string>(), r["outcome"]!.GetValue<string>(), r["message"]?.GetValue<string>() ?? "", problems));
        }
        return ledger.Entries.Select(e => new EntryUse(e, byId.GetValueOrDefault(e.Id) ?? [])).ToList();
    }

    /// <summary>Rewrites <paramref name="ledgerPath"/>; returns (changes made, things left for a person).</summary>
    public static (IReadOnlyList<string> Changes, IReadOnlyList<string> Residue) Fix(string ledgerPath, JsonNode report, string reportPath)
    {
        if (report["complete"]?.GetValue<bool>() != true)
            throw new InvalidOperationException($"{reportPath} is from a filtered or sharded run; `ledger --fix` needs a complete run (conformance run, or merge every shard first)");
        // A cell two entries claim is reported under the first only: which to keep is a person's call.
        if ((report["results"]?.AsArray() ?? []).Any(r => r?["message"]?.GetValue<string>() is { } m && m.StartsWith("ledger: ", StringComparison.Ordinal) && m.Contains(" is declared by ", StringComparison.Ordinal)))
            throw new InvalidOperationException($"{reportPath} has cells declared by two entries: resolve the overlap in the ledger by hand first");
        var text = File.ReadAllText(ledgerPath);
        var ledger = FailureLedger.Parse(text, ledgerPath);
        var root = JsonNode.Parse(text)!.AsObject();
        var entries = root["entries"]!.AsArray();
        var changes = new List<string>();
        var residue = new List<string>();
        foreach (var use in Uses(ledger, report))
        {
            var node = entries.First(n => n!["id"]!.GetValue<string>() == use.Entry.Id)!;
            var id = use.Entry.Id;
            if (use.Cells.Count == 0 && use.Entry.Awaits is not null) continue; // dormant until what it awaits exists
            if (use.Cells.Count == 0 || use.Cells.Count == use.Stale.Count)
            {
                entries.Remove(node);
                changes.Add(use.Cells.Count == 0 ? $"removed \"{id}\": its cells match no cell of the run" : $"removed \"{id}\": all {use.Cells.Count} cells it declares now pass");
                continue;
            }
            if (use.Stale.Count > 0) residue.Add($"\"{id}\": narrow its cells by hand, {use.Stale.Count} cells now pass: {string.Join(", ", use.Stale.Take(5))}{(use.Stale.Count > 5 ? ", …" : "")}");
            if (use.Other.Count > 0) residue.Add($"\"{id}\": {use.Other.Count} declared cells fail otherwise than declared (see the report): {string.Join(", ", use.Other.Take(5))}");
            if (use.Known > 0)
            {
                var shown = use.Cells.Where(c => c.Outcome == "known_failure").SelectMany(c => c.Problems).ToList();
                var problems = node["problems"]!.AsArray();
                for (int i = use.Entry.Problems.Count - 1; i >= 0; i--)
                    if (!shown.Any(use.Entry.Problems[i].Matches))
                    {
                        problems.RemoveAt(i);
                        changes.Add($"\"{id}\": dropped expected problem {use.Entry.Problems[i]}, which no cell shows");
                    }
            }
            if (use.Entry.MaxCells != use.Cells.Count)
            {
                node["max_cells"] = use.Cells.Count;
                changes.Add($"\"{id}\": max_cells {use.Entry.MaxCells} -> {use.Cells.Count}");
            }
        }
        if (changes.Count > 0) DurableFile.WriteText(ledgerPath, LedgerWriter.Write(root, ledgerPath));
        return (changes, residue);
    }
}
