using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Runs;

/// <summary>A runtime as the run saw it: discovery's view, its hello, and its listing per case.</summary>
public sealed record RuntimeReport(Runtime Runtime, JsonNode? Hello, IReadOnlyDictionary<string, JsonNode?> Listings, string? Error);
