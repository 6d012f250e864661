using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>The raw verdict on one cell (before the ledger), with its evidence.</summary>
public sealed record CellVerdict(Outcome Outcome, IReadOnlyList<Problem> Problems, string Message)
{
    public OutputDiff? Diff { get; init; }
    public double? TrainEvalDiff { get; init; }
}
