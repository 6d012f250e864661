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
        var matrix = WithLibraries(runtimes).Where(r => r.Kind is RuntimeKinds.PyTorch or RuntimeKinds.TorchSharp).ToList();
        var cells = new List<Cell>();
        var seen = new HashSet<string>();
        foreach (var c in cases ?? Catalogue.All)
        foreach (var route in Catalogue.RoutesOf(c))
        foreach (var producer in On(matrix, route))
        foreach (var consumer in On(matrix, route))
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
            // A fixture set of one library's (fixtures/torchsharp-0.107+pybridge/) holds that library's routes only.
            if (Runtime.LibraryOf(g.Producer) is { } library && !Catalogue.LibrariesOf(g.Route).Contains(library)) continue;
            foreach (var consumer in On(matrix, g.Route))
            foreach (var mode in Catalogue.LoadModes(spec, consumer.Kind, g.Route))
            {
                var cell = new Cell(g.Case, g.Route, g.ProducerId, consumer.Id, mode);
                if (!seen.Add(cell.Name)) throw new InvalidOperationException($"duplicate cell name {cell.Name}");
                cells.Add(cell);
            }
        }
        return cells;
    }

    /// <summary>
    /// Who meets on a route: every PyTorch runtime, and each TorchSharp runtime once per library the route
    /// has (cases.json's route <c>libraries</c>), or the bare TorchSharp runtime on a route of TorchSharp's own.
    /// </summary>
    private static IEnumerable<Runtime> On(IReadOnlyList<Runtime> matrix, string route) => matrix.Where(r => Meets(r, route));

    /// <summary>Whether a runtime takes part in a route's cells (<see cref="On"/>).</summary>
    public static bool Meets(Runtime runtime, string route)
    {
        if (runtime.Kind != RuntimeKinds.TorchSharp) return true;
        var libraries = Catalogue.LibrariesOf(route);
        return libraries.Count == 0 ? runtime.Library is null : runtime.Library is { } l && libraries.Contains(l);
    }

    /// <summary>
    /// The runtimes and, for each bare TorchSharp runtime, one per .NET library (the catalogue's libraries:
    /// <c>torchsharp-0.107+pybridge</c>, <c>torchsharp-0.107+torchcheckpoints</c>): the same worker, asked
    /// to use that library (its requests' <c>library</c>). Idempotent.
    /// </summary>
    public static IReadOnlyList<Runtime> WithLibraries(IReadOnlyList<Runtime> runtimes)
    {
        var ids = runtimes.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var all = new List<Runtime>(runtimes);
        foreach (var r in runtimes.Where(r => r.Kind == RuntimeKinds.TorchSharp && r.Library is null))
        foreach (var (library, _, _) in Catalogue.Libraries)
        {
            var variant = r.WithLibrary(library);
            if (ids.Add(variant.Id)) all.Add(variant);
        }
        return all;
    }
}
