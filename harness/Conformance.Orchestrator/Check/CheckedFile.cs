using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Check;

/// <summary>One checked file (or Hugging Face folder): inventory, every reader, one verdict and its remedy.</summary>
public sealed record CheckedFile(
    string Path,
    string Format,
    JsonObject? Inventory,
    string? ReferenceRuntime,
    IReadOnlyList<ReaderResult> Readers,
    IReadOnlyList<TwinResult> Twin,
    Verdict Verdict,
    IReadOnlyList<CheckedFile> Parts);
