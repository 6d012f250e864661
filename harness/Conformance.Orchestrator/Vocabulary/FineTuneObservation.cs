using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>Consumer only: one plain SGD step after the load; which parameters were frozen (requires_grad false) and which it left unchanged.</summary>
public sealed record FineTuneObservation(IReadOnlyList<string> Parameters, IReadOnlyList<string> Frozen, IReadOnlyList<string> Unchanged);
