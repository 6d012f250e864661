using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Runtimes;

/// <summary>A runtime an environment holds: PyTorch behind an interpreter, or TorchSharp.</summary>
public sealed record EnvironmentRuntime(string Kind, string? Python);
