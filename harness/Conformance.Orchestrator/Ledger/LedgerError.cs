using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>Something wrong with the ledger itself, found by a run: each fails the run.</summary>
public sealed record LedgerError(string EntryId, string Message)
{
    public override string ToString() => $"ledger entry \"{EntryId}\": {Message}";
}
