using System.Globalization;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>What a checkpoint judgement found beyond the model tensors: problems fail the cell, notes document representation differences.</summary>
public sealed record CheckpointVerdict(IReadOnlyList<Problem> Problems, IReadOnlyList<string> Notes);
