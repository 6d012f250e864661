using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>The measured distance between two eval outputs.</summary>
public sealed record OutputDiff(double MaxAbs, double MaxRel, int WorstIndex, bool WithinTolerance);
