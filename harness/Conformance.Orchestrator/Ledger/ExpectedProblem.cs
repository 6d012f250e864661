using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// One problem a ledger entry expects: its code, optionally its exact subject, the start of its
/// message (a literal prefix, never a pattern), and optionally a bound on its measure (an output
/// difference may be declared, but not allowed to grow without limit).
/// </summary>
public sealed record ExpectedProblem(string Code, string? Subject, string MessagePrefix, double? MaxMeasure = null)
{
    public bool Matches(Problem p) =>
        p.Code == Code
        && (Subject is null || p.Subject == Subject)
        && p.Message.StartsWith(MessagePrefix, StringComparison.Ordinal)
        && (MaxMeasure is null || p.Measure is { } m && m <= MaxMeasure);

    public override string ToString() =>
        $"{Code}{(Subject is null ? "" : $"[{Subject}]")}: \"{MessagePrefix}…\"{(MaxMeasure is null ? "" : $" (≤ {MaxMeasure:g3})")}";
}
