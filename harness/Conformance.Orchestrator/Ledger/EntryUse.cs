using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Ledger;

/// <summary>One entry as a run saw it: the cells it declared and how each came out.</summary>
public sealed record EntryUse(LedgerEntry Entry, IReadOnlyList<(string Cell, string Outcome, string Message, IReadOnlyList<Problem> Problems)> Cells)
{
    public int Known => Cells.Count(c => c.Outcome == "known_failure");
    public IReadOnlyList<string> Stale => Cells.Where(c => c.Message.StartsWith("stale known failure", StringComparison.Ordinal)).Select(c => c.Cell).ToList();
    public IReadOnlyList<string> Other => Cells.Where(c => c.Outcome != "known_failure" && !c.Message.StartsWith("stale known failure", StringComparison.Ordinal)).Select(c => c.Cell).ToList();
}
