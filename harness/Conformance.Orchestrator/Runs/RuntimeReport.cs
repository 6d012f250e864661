using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Runs;

/// <summary>A runtime as the run saw it: discovery's view, its hello, and its listing per case.</summary>
public sealed record RuntimeReport(Runtime Runtime, JsonNode? Hello, IReadOnlyDictionary<string, JsonNode?> Listings, string? Error);
