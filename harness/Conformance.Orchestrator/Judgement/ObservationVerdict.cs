using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>A judgement of one consumer observation against its producer's.</summary>
public sealed record ObservationVerdict(IReadOnlyList<Problem> Problems, OutputDiff? Diff)
{
    public bool Passed => Problems.Count == 0;

    /// <summary>Every problem, one line, for tables and messages; nothing is cut off.</summary>
    public string Summary => string.Join("; ", Problems.Select(p => p.Line));
}
