using System.Diagnostics;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Tests;

/// <summary>
/// The orchestrator does not take a producer's word for a save: a file reported written but absent
/// or empty fails its cells, and what a producer that died mid-save left (the artifact, its
/// temporaries) is removed and named. The producer is the plumbing dummy (it answers "produce" by
/// echoing, writing nothing), a real process; the files are real.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class IoProducerSpecs
{
    private static Runtime Dummy()
    {
        var dll = Path.Combine(RepoLayout.Find().Root, "tests", "Conformance.Tests.Dummy", "bin", TestPaths.Configuration, "net10.0", "Conformance.Tests.Dummy.dll");
        return new Runtime("dummy-0.0", RuntimeKinds.Dummy, "0.0", "cpu", new Launch(["dotnet", dll]));
    }

    private static (RunResult Run, MatrixRunner Runner) Run(string name, IReadOnlyList<Cell> cells, Action<string, int, string, MatrixRunner> onRequest)
    {
        var dir = Path.Combine(RepoLayout.Find().ArtifactsDir, "tests", "io-" + name);
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        var options = RunnerOptions.FromEnvironment(dir) with { Parallel = false, RequestTimeout = TimeSpan.FromSeconds(30) };
        using var pool = new WorkerPool(options.StartTimeout);
        var runner = new MatrixRunner([Dummy()], MatrixFixture.Suite.Ledger, options, pool);
        pool.RequestStarting += (_, pid, op) => onRequest(dir, pid, op, runner);
        return (runner.Run(cells), runner);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_save_reported_but_missing_or_empty_fails_its_cells_naming_the_file()
    {
        await Task.Yield();
        var missing = new Cell("lenet", "pickle", "dummy-0.0", "dummy-0.0", "default");
        var empty = new Cell("lenet", "safetensors", "dummy-0.0", "dummy-0.0", "default");
        var (run, runner) = Run("missing", [missing, empty], (dir, _, op, r) =>
        {
            // The second artifact's producer leaves a 0-byte file, as a save that failed without saying so did.
            var path = r.ArtifactPath(empty);
            if (op == "produce" && Directory.Exists(Path.GetDirectoryName(path)!)) File.WriteAllBytes(path, []);
        });
        var a = run.Results.Single(x => x.Cell == missing);
        var b = run.Results.Single(x => x.Cell == empty);
        Assert.Equal(Outcome.Fail, a.Outcome);
        Assert.Equal(ProblemCodes.SaveError, Assert.Single(a.Problems).Code);
        Assert.Contains($"producer dummy-0.0 reported a successful save, but {runner.ArtifactPath(missing)} does not exist", a.Message);
        Assert.Equal(Outcome.Fail, b.Outcome);
        Assert.Contains($"reported a successful save, but {runner.ArtifactPath(empty)} is empty (0 bytes)", b.Message);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_producer_that_dies_mid_save_leaves_nothing_behind_and_the_cell_names_what_was_removed()
    {
        await Task.Yield();
        var cell = new Cell("lenet", "torchsharp_native", "dummy-0.0", "dummy-0.0", "default");
        string? partial = null, temp = null;
        var (run, runner) = Run("died", [cell], (dir, pid, op, r) =>
        {
            if (op != "produce") return;
            // What a worker killed while saving leaves: a half-written artifact and its save temporary.
            partial = r.ArtifactPath(cell);
            temp = DurableFile.TempBeside(partial);
            File.WriteAllBytes(partial, new byte[1000]);
            File.WriteAllBytes(temp, new byte[500]);
            Process.GetProcessById(pid).Kill();
        });
        var result = Assert.Single(run.Results);
        Assert.Equal(Outcome.Fail, result.Outcome);
        Assert.Contains("killed by SIGKILL", result.Message);
        Assert.Contains($"removed what it left: {partial}, {temp}", result.Message);
        Assert.False(File.Exists(partial));
        Assert.False(File.Exists(temp));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(partial!)!));
    }
}
