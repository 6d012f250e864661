using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

[Trait("Category", "unit")]
public sealed class BaselineSpecs
{
    private static readonly string Repo = RepoLayout.Find().Root;

    private static JsonNode RoundTrip(JsonNode report) =>
        Baseline.Expand(JsonNode.Parse(Baseline.Write(Baseline.From(report, "0123456789abcdef", "report.json")))!, "baseline.json");

    [Fact]
    public void A_baseline_compares_like_the_report_it_was_made_from_and_still_finds_a_planted_regression()
    {
        var rows = SyntheticReport.Baseline()
            .With("lenet/pickle/pytorch-2.6->torchsharp-0.107/default", "known_failure", message: "frozen", problem: "frozen_after_load", subject: "fc1.weight", ledger: "frozen-entry");
        var report = SyntheticReport.Build(rows);
        var baseline = RoundTrip(report);
        var same = RunComparison.Compare(baseline, report, new Dictionary<string, string>(), "baseline.json", "report.json");
        Assert.False(same.HasChanges, same.Markdown());
        Assert.Empty(same.Drifts);
        Assert.Empty(same.Environment);
        Assert.Equal("frozen-entry", ReportFile.Str(ReportFile.Results(baseline).Single(r => ReportFile.Str(r, "cell") == "lenet/pickle/pytorch-2.6->torchsharp-0.107/default")["known_failure"], "id"));

        const string regressed = "lenet/pickle/pytorch-2.6->pytorch-2.6/default";
        var worse = SyntheticReport.Build(rows.With(regressed, "fail", message: "bytes differ", problem: "bytes", subject: "conv1.weight"));
        var c = RunComparison.Compare(baseline, worse, new Dictionary<string, string>(), "baseline.json", "new.json");
        Assert.Equal(regressed, Assert.Single(c.Regressions).Cell);
        Assert.Equal("bytes: conv1.weight", c.Regressions[0].Problems);
    }

    [Fact]
    public void A_run_that_is_not_complete_is_refused_as_a_baseline()
    {
        var e = Assert.Throws<InvalidDataException>(() => Baseline.From(SyntheticReport.Build(SyntheticReport.Baseline(), shard: "1/3", complete: false), null, "shard-1.json"));
        Assert.Contains("shard-1.json is not a complete run", e.Message);
    }

    [Fact]
    public void The_committed_baseline_is_complete_and_small_and_the_README_overview_is_made_from_it()
    {
        var path = Path.Combine(Repo, "reports", "baseline.json");
        Assert.True(File.Exists(path), "reports/baseline.json is committed: make baseline writes it");
        var size = new FileInfo(path).Length;
        Assert.True(size < Baseline.MaxBytes, $"reports/baseline.json is {size:N0} bytes, over {Baseline.MaxBytes:N0}");
        var baseline = ReportFile.Load(path);
        Assert.Equal("baseline", ReportFile.Str(baseline, "kind"));
        Assert.True(baseline["complete"]!.GetValue<bool>());
        Assert.Matches("^[0-9a-f]{40}$", ReportFile.Str(baseline, "commit"));
        var results = ReportFile.Results(baseline).ToList();
        Assert.True(results.Count > 1000, $"{results.Count} cells");
        // Nothing observed is kept: no messages beyond the problem codes, no hashes, no artifacts.
        Assert.DoesNotContain("sha256", File.ReadAllText(path));
        Assert.DoesNotContain("\"artifact\"", File.ReadAllText(path));

        var readme = File.ReadAllText(Path.Combine(Repo, "README.md"));
        Assert.Equal(Baseline.Overview(baseline), Baseline.OverviewIn(readme));
        Assert.True(readme.IndexOf(Baseline.OverviewBegin, StringComparison.Ordinal) < readme.IndexOf("## ", StringComparison.Ordinal), "the overview is at the README's top, before its first section");
    }

    [SkippableFact]
    public void Make_baseline_refuses_a_dirty_tree_before_it_runs_anything()
    {
        Skip.IfNot(File.Exists("/usr/bin/git") && File.Exists("/usr/bin/make"), "needs git and make");
        var clone = Directory.CreateTempSubdirectory("baseline-dirty-").FullName;
        try
        {
            // A clone of HEAD with this checkout's Makefile and scripts, committed: what make baseline sees on a clean tree.
            var (code, text) = Shell.Run(
                $"git clone -q --no-hardlinks {Repo} {clone}/repo && cp {Repo}/Makefile {clone}/repo/ && cp -r {Repo}/scripts/. {clone}/repo/scripts/ " +
                $"&& cd {clone}/repo && git add -A && git -c user.name=t -c user.email=t@t commit -qm scripts --allow-empty && git status --porcelain | wc -l",
                TimeSpan.FromMinutes(1));
            Assert.True(code == 0, text);
            Assert.Equal("0", text.Trim().Split('\n')[^1]);

            File.WriteAllText(Path.Combine(clone, "repo", "planted change.txt"), "not committed");
            File.AppendAllText(Path.Combine(clone, "repo", "known-failures.json"), "\n");
            (code, text) = Shell.Run($"cd {clone}/repo && make baseline 2>&1", TimeSpan.FromMinutes(1));
            Assert.NotEqual(0, code);
            Assert.Contains("refusing on a dirty tree", text);
            Assert.Contains("known-failures.json", text);
            Assert.Contains("planted change.txt", text);
            // Refused before any set-up or run: no report, the committed baseline untouched.
            Assert.DoesNotContain("== host packages", text);
            Assert.False(File.Exists(Path.Combine(clone, "repo", "reports", "compatibility.json")));
            Assert.Equal(File.ReadAllText(Path.Combine(Repo, "reports", "baseline.json")), File.ReadAllText(Path.Combine(clone, "repo", "reports", "baseline.json")));
        }
        finally
        {
            Directory.Delete(clone, recursive: true);
        }
    }
}
