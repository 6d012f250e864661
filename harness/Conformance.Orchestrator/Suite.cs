using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;

namespace Conformance.Orchestrator;

/// <summary>The whole job in one call: discover runtimes, plan the matrix, run it, judge it.</summary>
public sealed class Suite
{
    public RepoLayout Repo { get; }
    public IReadOnlyList<Runtime> Runtimes { get; }
    public IReadOnlyList<string> DiscoveryNotes { get; }
    public FailureLedger Ledger { get; }
    public IReadOnlyList<Cell> Cells { get; }
    public IReadOnlyList<GoldenFixture> Goldens { get; }
    /// <summary>Device runtimes planned but not on this machine (TorchSharp on CUDA): their cells are skipped, named, never failed.</summary>
    public IReadOnlyList<Runtime> AwaitingDevice { get; }

    public Suite(RepoLayout repo, IReadOnlyList<Runtime>? runtimes = null)
    {
        Repo = repo;
        var discovery = new Discovery(repo);
        Runtimes = Planner.WithLibraries(runtimes ?? discovery.Discover());
        DiscoveryNotes = discovery.Notes;
        Ledger = FailureLedger.Load(repo.KnownFailuresFile);
        Goldens = GoldenFixtures.Find(repo.FixturesDir);
        AwaitingDevice = runtimes is null ? Planner.WithLibraries(Discovery.AwaitingDevice(Runtimes.Where(r => r.Library is null).ToList())) : [];
        Cells = Planner.Plan([.. Runtimes, .. AwaitingDevice], goldens: Goldens);
    }

    /// <summary>Whether a missing runtime fails the run instead of skipping its cells.</summary>
    public static bool RequireAll => Environment.GetEnvironmentVariable("CONFORMANCE_REQUIRE_ALL") == "1";

    public RunResult Run(string artifactsDir, Action<CellResult, int, int>? progress = null, Action<WorkerPool>? configure = null,
        Selection? selection = null, RunnerOptions? options = null, IReadOnlyList<Cell>? cells = null)
    {
        options ??= RunnerOptions.FromEnvironment(artifactsDir);
        options = options with { ArtifactsDir = artifactsDir };
        // An explicit list of cells (tests) is a selection too: never complete.
        selection ??= cells is null ? Selection.All : new Selection(Cells: $"{cells.Count} cells chosen by the caller");
        using var pool = new WorkerPool(options.StartTimeout, options.WorkerEnvironment);
        configure?.Invoke(pool);
        return new MatrixRunner(Runtimes, Ledger, options, pool, Goldens, AwaitingDevice).Run(cells ?? selection.Apply(Cells), progress, selection);
    }
}
