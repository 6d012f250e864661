using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Vocabulary;

public sealed record Outputs(IReadOnlyList<long> Shape, IReadOnlyList<double> Values);
