using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>What a strict=False warm start must report, on both sides.</summary>
public sealed record PartialLoad(IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);
