using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Matrix;

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
