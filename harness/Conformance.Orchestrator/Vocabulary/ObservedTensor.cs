using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Vocabulary;

public sealed record ObservedTensor(string Key, IReadOnlyList<long> Shape, string Dtype, string Sha256)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
