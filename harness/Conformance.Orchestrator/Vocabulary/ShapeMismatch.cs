using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>What a load into a model of the wrong shape must say: the key and both shapes.</summary>
public sealed record ShapeMismatch(string Key, IReadOnlyList<long> FileShape, IReadOnlyList<long> ModelShape);
