using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// What the CI workflow's jobs run (.ci/shard.sh 1..3 of 3, then .ci/merge.sh; set-up skipped, as `make test`
/// did it and its build is in use), here: the merged
/// report of the three shards equals the full run of this test session (compare --fail-on-change), and
/// the merge job's summary is written.
/// </summary>
[Collection(MatrixCollection.Name)]
[Trait("Category", "matrix")]
public sealed class ShardMergeSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    private static readonly string Repo = Conformance.Orchestrator.Runtimes.RepoLayout.Find().Root;

    [SkippableFact(Timeout = 2_400_000)]
    public async Task Three_shards_merged_and_compared_as_the_workflow_does_equal_the_full_run()
    {
        await Task.Yield();
        MatrixFixture.SkipOrFailWhenMissing(MatrixFixture.Suite.Runtimes.Any(r => !r.Available) ? "needs every runtime" : null);
        Assert.NotEmpty(fixture.Run.Results);  // the full run, written to artifacts/tests/matrix-report/ by the fixture
        var full = Path.Combine(Repo, "artifacts", "tests", "matrix-report", "compatibility.json");
        var dir = Path.Combine(Repo, "artifacts", "tests", "shards");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var shards = new List<string>();
        for (int i = 1; i <= 3; i++)
        {
            var shard = Path.Combine(dir, $"shard-{i}");
            var (code, text) = Shell.Run($"SKIP_SETUP=1 SHARD_ARGS='--artifacts {dir}/artifacts-{i}' bash {Repo}/.ci/shard.sh {i} 3 {shard} 2>&1 | tail -n 5", TimeSpan.FromMinutes(12), output);
            Assert.True(File.Exists(Path.Combine(shard, "compatibility.json")), text);
            Assert.Contains($"shard {i}/3: exit", text);
            shards.Add(shard);
        }
        var merged = Path.Combine(dir, "merged");
        // The series so far: one earlier run (the committed baseline); the merge job adds this one and builds the page.
        var history = Path.Combine(dir, "history");
        Directory.CreateDirectory(history);
        File.Copy(Path.Combine(Repo, "reports", "baseline.json"), Path.Combine(history, "run-00000000T000000Z-baseline.json"));
        var (rc, summary) = Shell.Run($"FAIL_ON_CHANGE=1 HISTORY_DIR={history} bash {Repo}/.ci/merge.sh {full} {merged} {string.Join(" ", shards)}", TimeSpan.FromMinutes(5), output);
        Assert.True(rc == 0, summary);
        Assert.Contains("0 other changes, 0 new, 0 vanished", summary);
        Assert.Equal(2, Directory.GetFiles(history, "run-*.json").Length);
        Assert.Contains("2 runs, ", summary);
        Assert.True(File.Exists(Path.Combine(merged, "history", "history.html")));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "compatibility.json")))!;
        Assert.True(report["complete"]!.GetValue<bool>(), "three shards 1/3..3/3 of one run merge into a complete report");
        Assert.Equal(fixture.Run.Results.Count, report["results"]!.AsArray().Count);
        Assert.True(File.Exists(Path.Combine(merged, "summary.md")));
        // The cells' files (about 1 GB for the whole matrix) are not kept; the reports are.
        for (int i = 1; i <= 3; i++) Directory.Delete(Path.Combine(dir, $"artifacts-{i}"), recursive: true);
    }

    /// <summary>
    /// The committed baseline is this commit's outcome of every cell: a change of outcome is committed with a
    /// new baseline (make baseline), so the workflow's comparison with it shows only what a PR changes.
    /// </summary>
    [SkippableFact(Timeout = 2_400_000)]
    public async Task The_committed_baseline_holds_this_runs_outcome_for_every_cell()
    {
        await Task.Yield();
        MatrixFixture.SkipOrFailWhenMissing(MatrixFixture.Suite.Runtimes.Any(r => !r.Available) ? "needs every runtime" : null);
        Assert.NotEmpty(fixture.Run.Results);
        var run = Conformance.Orchestrator.Reports.ReportFile.Load(Path.Combine(Repo, "artifacts", "tests", "matrix-report", "compatibility.json"));
        var baseline = Conformance.Orchestrator.Reports.ReportFile.Load(Path.Combine(Repo, "reports", "baseline.json"));
        Skip.If(!run["complete"]!.GetValue<bool>(), "the test run is a selection");
        var ids = (JsonNode r) => string.Join(",", Conformance.Orchestrator.Reports.ReportFile.Runtimes(r).Select(x => x["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Skip.If(ids(run) != ids(baseline), $"this run's runtimes ({ids(run)}) are not the baseline's ({ids(baseline)}): a TorchSharp under test, compared by the workflow");
        var c = Conformance.Orchestrator.Reports.RunComparison.Compare(baseline, run, new Dictionary<string, string>(), "reports/baseline.json", "this run");
        Assert.False(c.HasChanges, "outcomes differ from reports/baseline.json; if the change is meant, commit it and run make baseline:\n" + c.Markdown());
    }
}
