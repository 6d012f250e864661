using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;

namespace Conformance.Tests;

[Trait("Category", "unit")]
public sealed class MergeSpecs
{
    private static (List<SyntheticReport.Row> A, List<SyntheticReport.Row> B) Halves()
    {
        var all = SyntheticReport.Baseline();
        return (all.Where((_, i) => i % 2 == 0).ToList(), all.Where((_, i) => i % 2 == 1).ToList());
    }

    [Fact]
    public void Two_shards_merge_into_their_union_with_a_recomputed_summary_and_complete_true()
    {
        var (a, b) = Halves();
        var merged = ReportMerge.Merge([
            ("shard1.json", SyntheticReport.Build(a, shard: "1/2", complete: false)),
            ("shard2.json", SyntheticReport.Build(b, shard: "2/2", complete: false)),
        ]);
        Assert.Equal(2, merged["schema"]!.GetValue<int>());
        Assert.True(merged["complete"]!.GetValue<bool>());
        Assert.Null(merged["selection"]!["shard"]);
        var cells = merged["results"]!.AsArray().Select(r => r!["cell"]!.GetValue<string>()).ToList();
        Assert.Equal(SyntheticReport.Baseline().Select(r => r.Cell).Order(), cells.Order());
        var summary = merged["summary"]!;
        Assert.Equal((4, 1, 1, 0, 0), (summary["pass"]!.GetValue<int>(), summary["known_failure"]!.GetValue<int>(),
            summary["fail"]!.GetValue<int>(), summary["skipped"]!.GetValue<int>(), summary["not_applicable"]!.GetValue<int>()));
        Assert.Equal("CONFORMANCE SUITE FAILED: 4 passes, 1 known failures, 1 unexpected failures, 0 skips, 0 not applicable",
            summary["line"]!.GetValue<string>());
        Assert.Equal(15.0, merged["seconds"]!.GetValue<double>());
        Assert.Equal(2, merged["runtimes"]!.AsArray().Count);
        Assert.Empty(merged["merge"]!["notes"]!.AsArray());

        // The merged report is a report: compare reads it, and it matches the unsharded run.
        var whole = SyntheticReport.Build(SyntheticReport.Baseline());
        var c = RunComparison.Compare(whole, JsonNode.Parse(ReportMerge.Write(merged))!, new Dictionary<string, string>());
        Assert.False(c.HasChanges);
        Assert.Empty(c.Environment);
    }

    [Fact]
    public void A_cell_in_two_shards_is_an_error_naming_both_files()
    {
        var (a, b) = Halves();
        b.Add(a[0]);
        var e = Assert.Throws<InvalidDataException>(() => ReportMerge.Merge([
            ("run/shard1.json", SyntheticReport.Build(a, shard: "1/2", complete: false)),
            ("run/shard2.json", SyntheticReport.Build(b, shard: "2/2", complete: false)),
        ]));
        Assert.Contains(a[0].Cell, e.Message);
        Assert.Contains("run/shard1.json", e.Message);
        Assert.Contains("run/shard2.json", e.Message);
    }

    [Fact]
    public void Shards_that_are_not_exactly_one_to_n_of_n_merge_as_incomplete()
    {
        var (a, b) = Halves();
        var merged = ReportMerge.Merge([
            ("shard1.json", SyntheticReport.Build(a, shard: "1/3", complete: false)),
            ("shard2.json", SyntheticReport.Build(b, shard: "2/3", complete: false)),
        ]);
        Assert.False(merged["complete"]!.GetValue<bool>());
        Assert.Equal("1/3,2/3", merged["selection"]!["shard"]!.GetValue<string>());
        Assert.Contains(merged["merge"]!["notes"]!.AsArray(), n => n!.GetValue<string>().Contains("not complete"));
    }

    [Fact]
    public void One_runtime_id_with_two_versions_is_an_error_naming_both_files()
    {
        var (a, b) = Halves();
        var e = Assert.Throws<InvalidDataException>(() => ReportMerge.Merge([
            ("shard1.json", SyntheticReport.Build(a, shard: "1/2", complete: false)),
            ("shard2.json", SyntheticReport.Build(b, version: "0.107.1", shard: "2/2", complete: false)),
        ]));
        Assert.Contains("runtime torchsharp-0.107 has version 0.107.0 in shard1.json but 0.107.1 in shard2.json", e.Message);
    }

    [Fact]
    public void Differing_environments_keep_the_first_with_a_note_and_ledger_errors_are_united()
    {
        var (a, b) = Halves();
        var first = SyntheticReport.Build(a, shard: "1/2", complete: false);
        var second = SyntheticReport.Build(b, shard: "2/2", complete: false, cores: 8);
        var error = new JsonObject { ["entry"] = "lenet/*/stale", ["message"] = "matches no cell" };
        first["ledger_errors"]!.AsArray().Add(error.DeepClone());
        second["ledger_errors"]!.AsArray().Add(error.DeepClone());
        var merged = ReportMerge.Merge([("shard1.json", first), ("shard2.json", second)]);
        Assert.Equal(2, merged["environment"]!["machine"]!["cores"]!.GetValue<int>());
        Assert.Contains(merged["merge"]!["notes"]!.AsArray(), n => n!.GetValue<string>() == "environment of shard2.json differs from shard1.json's, which is kept");
        Assert.Single(merged["ledger_errors"]!.AsArray());
        Assert.EndsWith(", 1 ledger errors", merged["summary"]!["line"]!.GetValue<string>());
        Assert.StartsWith("CONFORMANCE SUITE FAILED", merged["summary"]!["line"]!.GetValue<string>());
    }

    [Fact]
    public void A_shard_that_is_not_schema_2_is_refused_naming_the_file()
    {
        var (a, _) = Halves();
        var e = Assert.Throws<InvalidDataException>(() => ReportMerge.Merge([
            ("shard1.json", SyntheticReport.Build(a, shard: "1/2", complete: false)),
            ("old/shard2.json", JsonNode.Parse("""{"schema": 1, "results": []}""")!),
        ]));
        Assert.StartsWith("old/shard2.json: report schema is 1, expected 2", e.Message);
    }
}
