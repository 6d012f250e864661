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
        var (rc, summary) = Shell.Run($"FAIL_ON_CHANGE=1 bash {Repo}/.ci/merge.sh {full} {merged} {string.Join(" ", shards)}", TimeSpan.FromMinutes(5), output);
        Assert.True(rc == 0, summary);
        Assert.Contains("0 other changes, 0 new, 0 vanished", summary);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "compatibility.json")))!;
        Assert.True(report["complete"]!.GetValue<bool>(), "three shards 1/3..3/3 of one run merge into a complete report");
        Assert.Equal(fixture.Run.Results.Count, report["results"]!.AsArray().Count);
        Assert.True(File.Exists(Path.Combine(merged, "summary.md")));
        // The cells' files (about 1 GB for the whole matrix) are not kept; the reports are.
        for (int i = 1; i <= 3; i++) Directory.Delete(Path.Combine(dir, $"artifacts-{i}"), recursive: true);
    }
}
