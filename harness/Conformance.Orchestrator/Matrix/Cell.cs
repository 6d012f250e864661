using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Matrix;

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

public static class Planner
{
    /// <summary>
    /// product(producers, consumers) for every case and route, so each runtime also meets itself;
    /// every load mode the consumer's kind offers is its own cell. A duplicate name is fatal.
    /// </summary>
    /// <remarks>Each golden fixture is one more producer, <c>pytorch-1.13@golden</c>, met by every consumer.</remarks>
    public static IReadOnlyList<Cell> Plan(IReadOnlyList<Runtime> runtimes, IEnumerable<CaseSpec>? cases = null, IReadOnlyList<GoldenFixture>? goldens = null)
    {
        var matrix = runtimes.Where(r => r.Kind is RuntimeKinds.PyTorch or RuntimeKinds.TorchSharp).ToList();
        var cells = new List<Cell>();
        var seen = new HashSet<string>();
        foreach (var c in cases ?? Catalogue.All)
        foreach (var route in Catalogue.RoutesOf(c))
        foreach (var producer in matrix)
        foreach (var consumer in matrix)
        foreach (var mode in Catalogue.LoadModes(c, consumer.Kind, route))
        {
            var cell = new Cell(c.Name, route, producer.Id, consumer.Id, mode);
            if (!seen.Add(cell.Name)) throw new InvalidOperationException($"duplicate cell name {cell.Name}: two runtimes share an id");
            cells.Add(cell);
        }
        var caseNames = (cases ?? Catalogue.All).ToDictionary(c => c.Name);
        foreach (var g in goldens ?? [])
        {
            if (!caseNames.TryGetValue(g.Case, out var spec) || !Catalogue.RoutesOf(spec).Contains(g.Route)) continue;
            foreach (var consumer in matrix)
            foreach (var mode in Catalogue.LoadModes(spec, consumer.Kind, g.Route))
            {
                var cell = new Cell(g.Case, g.Route, g.ProducerId, consumer.Id, mode);
                if (!seen.Add(cell.Name)) throw new InvalidOperationException($"duplicate cell name {cell.Name}");
                cells.Add(cell);
            }
        }
        return cells;
    }
}
