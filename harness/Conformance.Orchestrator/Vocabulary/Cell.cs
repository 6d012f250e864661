
namespace Conformance.Orchestrator.Vocabulary;

/// <summary>
/// One cell of the matrix: (case, route, producer, consumer, mode). Its name is built from those
/// parts, <c>lenet/pickle/pytorch-2.6-&gt;torchsharp-0.107/default</c>, and is unique.
/// </summary>
public sealed record Cell(string Case, string Route, string Producer, string Consumer, string Mode)
{
    public string Name => $"{Case}/{Route}/{Producer}->{Consumer}/{Mode}";

    /// <summary>The artifact a cell consumes: one per (case, route, producer).</summary>
    public string ArtifactKey => $"{Case}/{Route}/{Producer}";

    public override string ToString() => Name;

    public static Cell Parse(string name)
    {
        var parts = name.Split('/');
        var pair = parts.Length == 4 ? parts[2].Split("->") : [];
        if (parts.Length != 4 || pair.Length != 2)
            throw new FormatException($"cell name '{name}' is not case/route/producer->consumer/mode");
        return new Cell(parts[0], parts[1], pair[0], pair[1], parts[3]);
    }
}
