using Conformance.Orchestrator;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

/// <summary>
/// Runs the whole matrix once per test run, with real runtimes; each cell's test then reads its
/// verdict. Discovery is shared with the theory data so the test names and the run agree.
/// </summary>
public sealed class MatrixFixture
{
    private static readonly Lazy<Suite> SharedSuite = new(() => new Suite(RepoLayout.Find()));
    private readonly Lazy<RunResult> _run;

    public MatrixFixture()
    {
        _run = new Lazy<RunResult>(() =>
        {
            var dir = Path.Combine(Suite.Repo.ArtifactsDir, "tests", "matrix");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            var run = Suite.Run(dir);
            // Kept for CI's determinism gate, which compares it with a one-core run (`conformance compare --fail-on-change`).
            Conformance.Orchestrator.Reports.ReportWriter.WriteAll(run, Path.Combine(Suite.Repo.ArtifactsDir, "tests", "matrix-report"));
            return run;
        });
    }

    public static Suite Suite => SharedSuite.Value;

    public RunResult Run => _run.Value;

    public CellResult Result(string cell) =>
        Run.Results.SingleOrDefault(r => r.Cell.Name == cell) ?? throw new KeyNotFoundException($"cell {cell} did not run");

    public static IEnumerable<object[]> CellNames() => Suite.Cells.Select(c => new object[] { c.Name });

    /// <summary>Skips when <paramref name="why"/> names a missing runtime, or fails under CONFORMANCE_REQUIRE_ALL=1.</summary>
    public static void SkipOrFailWhenMissing(string? why)
    {
        if (why is null) return;
        // TorchSharp's CUDA cells wait for a package no machine here can have: skipped, never failed (README, The GPU leg).
        if (why.Contains(Runtime.NoTorchSharpCuda, StringComparison.Ordinal)) Skip.If(true, why);
        if (Suite.RequireAll) Assert.Fail($"CONFORMANCE_REQUIRE_ALL=1 and a runtime is missing: {why}");
        Skip.If(true, why);
    }
}

[CollectionDefinition(Name)]
public sealed class MatrixCollection : ICollectionFixture<MatrixFixture>
{
    public const string Name = "matrix";
}
