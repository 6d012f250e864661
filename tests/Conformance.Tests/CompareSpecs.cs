using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>Small schema-2 reports built in code, for the compare and merge specs.</summary>
internal static class SyntheticReport
{
    public sealed record Row(string Cell, string Outcome, double? MaxAbs = null, string Message = "", double Atol = 1e-5,
                            string? Problem = null, string? Subject = null, string? Ledger = null);

    public static JsonObject Build(IEnumerable<Row> rows, string torchsharp = "torchsharp-0.107", string version = "0.107.0",
                                   string? shard = null, bool complete = true, int cores = 2)
    {
        var results = new JsonArray();
        foreach (var r in rows)
        {
            var parts = r.Cell.Split('/');
            var pair = parts[2].Split("->");
            results.Add(new JsonObject
            {
                ["cell"] = r.Cell, ["case"] = parts[0], ["route"] = parts[1],
                ["producer"] = pair[0], ["consumer"] = pair[1], ["mode"] = parts[3],
                ["outcome"] = r.Outcome, ["message"] = r.Message,
                ["problems"] = r.Problem is null ? new JsonArray() : new JsonArray(new JsonObject { ["code"] = r.Problem, ["subject"] = r.Subject, ["message"] = r.Message }),
                ["max_abs_diff"] = r.MaxAbs, ["max_rel_diff"] = r.MaxAbs,
                ["tolerance"] = new JsonObject { ["atol"] = r.Atol, ["rtol"] = 1e-4 },
                ["known_failure"] = r.Ledger is null ? null : new JsonObject { ["id"] = r.Ledger }, ["seconds"] = 0.1,
            });
        }
        var counts = new[] { "pass", "known_failure", "fail", "skipped", "not_applicable" }
            .ToDictionary(o => o, o => results.Count(x => x!["outcome"]!.GetValue<string>() == o));
        return new JsonObject
        {
            ["schema"] = 2, ["generated"] = "2026-01-02T03:04:05.0000000+00:00", ["seconds"] = 7.5,
            ["complete"] = complete,
            ["selection"] = new JsonObject { ["cells"] = null, ["case"] = null, ["route"] = null, ["runtime"] = null, ["mode"] = null, ["shard"] = shard },
            ["environment"] = new JsonObject
            {
                ["machine"] = new JsonObject { ["cpu_model"] = "Test CPU", ["cores"] = cores, ["os"] = "Debian 12" },
                ["threads"] = new JsonObject { ["intra_op"] = 2, ["inter_op"] = 1 }, ["timeout_seconds"] = 120,
            },
            ["runtimes"] = new JsonArray(
                Runtime("pytorch-2.6", "pytorch", "2.6.0+debian"),
                Runtime(torchsharp, "torchsharp", version)),
            ["results"] = results,
            ["ledger_errors"] = new JsonArray(),
            ["summary"] = new JsonObject
            {
                ["pass"] = counts["pass"], ["known_failure"] = counts["known_failure"], ["fail"] = counts["fail"],
                ["skipped"] = counts["skipped"], ["not_applicable"] = counts["not_applicable"], ["line"] = "CONFORMANCE SUITE ...",
            },
        };
    }

    private static JsonObject Runtime(string id, string kind, string version) => new()
    {
        ["id"] = id, ["kind"] = kind, ["version"] = version, ["device"] = "cpu", ["status"] = "available",
        ["hello"] = new JsonObject { ["version"] = version, ["threads"] = 2 },
    };

    /// <summary>The same handful of cells with a TorchSharp id of choice.</summary>
    public static List<Row> Baseline(string ts = "torchsharp-0.107") =>
    [
        new("lenet/pickle/pytorch-2.6->pytorch-2.6/default", "pass", 0),
        new($"lenet/pickle/pytorch-2.6->{ts}/default", "pass", 2.6e-8),
        new($"lenet/pickle/{ts}->pytorch-2.6/default", "pass", 1e-7),
        new($"lenet/pickle/{ts}->pytorch-2.6/mmap", "known_failure", Message: "conv1.weight: bytes differ"),
        new($"gru/safetensors/{ts}->{ts}/default", "fail", Message: "load_error: boom"),
        new($"lenet/pickle/pytorch-1.13@golden->{ts}/default", "pass", 0),
    ];

    public static List<Row> With(this List<Row> rows, string cell, string outcome, double? maxAbs = null, string message = "",
                                 string? problem = null, string? subject = null, string? ledger = null)
    {
        var i = rows.FindIndex(r => r.Cell == cell);
        Assert.True(i >= 0, $"no row {cell}");
        rows[i] = rows[i] with { Outcome = outcome, MaxAbs = maxAbs, Message = message, Problem = problem, Subject = subject, Ledger = ledger };
        return rows;
    }
}

[Trait("Category", "unit")]
public sealed class CompareSpecs
{
    private static readonly IReadOnlyDictionary<string, string> NoMap = new Dictionary<string, string>();

    private static RunComparison Compare(List<SyntheticReport.Row> oldRows, List<SyntheticReport.Row> newRows) =>
        RunComparison.Compare(SyntheticReport.Build(oldRows), SyntheticReport.Build(newRows), NoMap, "old.json", "new.json");

    [Fact]
    public void Identical_reports_have_no_changes_and_no_regressions()
    {
        var c = Compare(SyntheticReport.Baseline(), SyntheticReport.Baseline());
        Assert.False(c.HasRegressions);
        Assert.False(c.HasChanges);
        Assert.Empty(c.Drifts);
        Assert.Empty(c.Environment);
        Assert.Equal(6, c.Compared);
        Assert.StartsWith("✅ **No regressions**: 6 cells compared, 0 fixes", c.Verdict());
    }

    [Fact]
    public void A_pass_that_turns_into_a_fail_is_a_regression_named_in_the_markdown()
    {
        const string cell = "lenet/pickle/pytorch-2.6->torchsharp-0.107/default";
        var c = Compare(SyntheticReport.Baseline(), SyntheticReport.Baseline().With(cell, "fail", message: "fc1.weight: bytes differ"));
        Assert.True(c.HasRegressions);
        Assert.True(c.HasChanges);
        var r = Assert.Single(c.Regressions);
        Assert.Equal((cell, "pass", "fail"), (r.Cell, r.Old, r.New));
        var md = c.Markdown();
        Assert.Contains("❌ **1 regression**", md);
        Assert.Contains("### Regressions (1)", md);
        Assert.Contains($"`{cell}` | pass → fail | fc1.weight: bytes differ | [detail](compatibility.html#{ReportHtml.CellAnchor(cell)}) |", md);
    }

    [Fact]
    public void A_failure_that_now_passes_is_listed_as_a_fix_and_is_no_regression()
    {
        const string cell = "gru/safetensors/torchsharp-0.107->torchsharp-0.107/default";
        var c = Compare(SyntheticReport.Baseline(), SyntheticReport.Baseline().With(cell, "pass", 0));
        Assert.False(c.HasRegressions);
        Assert.True(c.HasChanges);
        Assert.Equal(cell, Assert.Single(c.Fixes).Cell);
        Assert.Contains("### Fixes (1)", c.Markdown());
    }

    [Fact]
    public void A_pass_that_becomes_skipped_or_a_newly_declared_known_failure_is_a_regression()
    {
        var rows = SyntheticReport.Baseline()
            .With("lenet/pickle/pytorch-2.6->pytorch-2.6/default", "skipped", message: "consumer pytorch-2.6 is missing")
            .With("lenet/pickle/torchsharp-0.107->pytorch-2.6/default", "known_failure");
        var c = Compare(SyntheticReport.Baseline(), rows);
        Assert.True(c.HasRegressions);
        Assert.Equal(2, c.Regressions.Count);
    }

    [Fact]
    public void Other_outcome_changes_are_listed_apart_from_regressions_and_fixes()
    {
        var c = Compare(SyntheticReport.Baseline(),
            SyntheticReport.Baseline().With("lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap", "not_applicable"));
        Assert.False(c.HasRegressions);
        Assert.True(c.HasChanges);
        var o = Assert.Single(c.OtherChanges);
        Assert.Equal(("known_failure", "not_applicable"), (o.Old, o.New));
    }

    [Fact]
    public void A_map_matches_the_old_torchsharp_cells_with_the_new_torchsharp_cells()
    {
        var old = SyntheticReport.Build(SyntheticReport.Baseline("torchsharp-0.107"));
        var @new = SyntheticReport.Build(SyntheticReport.Baseline("torchsharp-0.108"), "torchsharp-0.108", "0.108.0");
        var map = RunComparison.ParseMap(["torchsharp-0.107=torchsharp-0.108"]);
        var c = RunComparison.Compare(old, @new, map, "old.json", "new.json");
        Assert.False(c.HasChanges);
        Assert.Equal(6, c.Compared);
        var v = Assert.Single(c.Environment, e => e.Subject == "runtime torchsharp-0.108 version");
        Assert.Equal(("0.107.0", "0.108.0"), (v.Old, v.New));
        Assert.Contains("`torchsharp-0.107` → `torchsharp-0.108`", c.Markdown());

        var unmapped = RunComparison.Compare(old, @new, NoMap);
        Assert.Equal(5, unmapped.NewCells.Count);
        Assert.True(unmapped.HasRegressions, "passing cells that vanish are regressions");
    }

    [Fact]
    public void Golden_producers_are_never_renamed_by_the_map()
    {
        // pytorch-2.6@golden is the same files in both runs: mapping pytorch-2.6 must leave it alone.
        var rows = SyntheticReport.Baseline();
        rows.Add(new("lenet/pickle/pytorch-2.6@golden->torchsharp-0.107/default", "pass", 0));
        var c = RunComparison.Compare(SyntheticReport.Build(rows), SyntheticReport.Build(rows), new Dictionary<string, string> { ["pytorch-2.6"] = "pytorch-2.7" });
        // Vanished cells are named as the map renamed them: every table speaks the new report's ids.
        Assert.Contains(c.VanishedCells, v => v.Cell == "lenet/pickle/pytorch-2.7->pytorch-2.7/default");
        Assert.DoesNotContain(c.VanishedCells, v => v.Cell.Contains("@golden"));
        Assert.DoesNotContain(c.NewCells, v => v.Cell.Contains("@golden"));
        Assert.Equal(3, c.Compared);
    }

    [Fact]
    public void A_map_naming_a_runtime_the_old_report_lacks_is_refused()
    {
        var rows = SyntheticReport.Baseline();
        var e = Assert.Throws<ArgumentException>(() => RunComparison.Compare(SyntheticReport.Build(rows), SyntheticReport.Build(rows),
            RunComparison.ParseMap(["torchsharp-0.17=torchsharp-0.108"]), "old.json"));
        Assert.Contains("old.json has no runtime torchsharp-0.17", e.Message);
        Assert.Throws<ArgumentException>(() => RunComparison.ParseMap(["torchsharp-0.107"]));
    }

    [Fact]
    public void A_vanished_cell_and_a_new_cell_are_listed()
    {
        var newRows = SyntheticReport.Baseline();
        newRows.RemoveAt(1);
        newRows.Add(new("nested/pickle/pytorch-2.6->pytorch-2.6/default", "pass", 0));
        var c = Compare(SyntheticReport.Baseline(), newRows);
        Assert.Equal("lenet/pickle/pytorch-2.6->torchsharp-0.107/default", Assert.Single(c.VanishedCells).Cell);
        Assert.Equal("nested/pickle/pytorch-2.6->pytorch-2.6/default", Assert.Single(c.NewCells).Cell);
        Assert.True(c.HasRegressions, "a passing cell that stopped running must not let the gate pass");
        var md = c.Markdown();
        Assert.Contains("### Vanished cells (1)", md);
        Assert.Contains("### New cells (1)", md);
    }

    [Fact]
    public void A_tenfold_growth_of_the_output_difference_is_reported_as_drift()
    {
        const string cell = "lenet/pickle/torchsharp-0.107->pytorch-2.6/default";
        var c = Compare(SyntheticReport.Baseline(), SyntheticReport.Baseline().With(cell, "pass", 1.5e-6));
        Assert.False(c.HasChanges);
        var d = Assert.Single(c.Drifts);
        Assert.Equal(cell, d.Cell);
        Assert.Contains("grew 15×", d.Why);
        Assert.Contains("### Tolerance drift (1)", c.Markdown());
    }

    [Fact]
    public void Drift_ignores_differences_far_below_the_tolerance_and_reports_crossing_half_of_it()
    {
        // 0 → 2.6e-8 is two libtorch builds, not drift: below atol/1000 both count as atol/1000.
        const string identical = "lenet/pickle/pytorch-2.6->pytorch-2.6/default";
        const string near = "lenet/pickle/pytorch-2.6->torchsharp-0.107/default";
        var oldRows = SyntheticReport.Baseline().With(near, "pass", 4e-6);
        var c = Compare(oldRows, SyntheticReport.Baseline().With(identical, "pass", 2.6e-9).With(near, "pass", 6e-6));
        var d = Assert.Single(c.Drifts);
        Assert.Equal((near, "crossed half of atol"), (d.Cell, d.Why));
    }

    [Fact]
    public void Environment_changes_name_the_machine_and_hello_fields_that_differ()
    {
        var old = SyntheticReport.Build(SyntheticReport.Baseline());
        var @new = SyntheticReport.Build(SyntheticReport.Baseline(), cores: 4);
        @new["runtimes"]![0]!["hello"]!["threads"] = 4;
        old["runtimes"]![1]!["hello"]!["build_config"] = "PyTorch built with:\n  - GCC 12\n  - MKL 2024";
        @new["runtimes"]![1]!["hello"]!["build_config"] = "PyTorch built with:\n  - GCC 13\n  - MKL 2024";
        var c = RunComparison.Compare(old, @new, NoMap);
        Assert.Contains(new EnvironmentChange("environment.machine.cores", "2", "4"), c.Environment);
        Assert.Contains(new EnvironmentChange("runtime pytorch-2.6 hello.threads", "2", "4"), c.Environment);
        Assert.False(c.HasChanges);
        // A build config shows only the lines that changed.
        Assert.Contains("| runtime torchsharp-0.107 hello.build_config | - GCC 12 | - GCC 13 |", c.Markdown());
    }

    [Fact]
    public void Long_tables_are_capped_and_folded()
    {
        var oldRows = Enumerable.Range(0, 120).Select(i => new SyntheticReport.Row($"c{i}/pickle/pytorch-2.6->pytorch-2.6/default", "pass", 0)).ToList();
        var newRows = oldRows.Select(r => r with { Outcome = "fail" }).ToList();
        var md = Compare(oldRows, newRows).Markdown();
        Assert.StartsWith("## Conformance comparison: old.json → new.json", md);
        Assert.Contains("❌ **120 regressions**: 120 cells compared", md);
        Assert.Contains("<details><summary>120 rows</summary>", md);
        Assert.Contains("… and 70 more, in the JSON and HTML reports.", md);
        Assert.DoesNotContain("`c119/", md);
    }

    [Fact]
    public void A_report_that_is_not_schema_2_is_refused_naming_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("compare-specs");
        try
        {
            var v1 = Path.Combine(dir.FullName, "v1.json");
            File.WriteAllText(v1, """{"schema": 1, "results": []}""");
            var e = Assert.Throws<InvalidDataException>(() => ReportFile.Load(v1));
            Assert.Contains(v1, e.Message);
            Assert.Contains("schema is 1, expected 2", e.Message);

            var noResults = Path.Combine(dir.FullName, "empty.json");
            File.WriteAllText(noResults, """{"schema": 2}""");
            Assert.Contains(noResults, Assert.Throws<InvalidDataException>(() => ReportFile.Load(noResults)).Message);

            var garbage = Path.Combine(dir.FullName, "garbage.json");
            File.WriteAllText(garbage, "not json");
            Assert.Contains(garbage, Assert.Throws<InvalidDataException>(() => ReportFile.Load(garbage)).Message);

            var good = Path.Combine(dir.FullName, "good.json");
            File.WriteAllText(good, SyntheticReport.Build(SyntheticReport.Baseline()).ToJsonString());
            Assert.False(RunComparison.Compare(ReportFile.Load(good), ReportFile.Load(good), NoMap).HasChanges);

            var inMemory = Assert.Throws<InvalidDataException>(() => RunComparison.Compare(JsonNode.Parse("""{"schema": 1}""")!,
                SyntheticReport.Build(SyntheticReport.Baseline()), NoMap, "old.json", "new.json"));
            Assert.StartsWith("old.json:", inMemory.Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void The_summary_leads_with_the_verdict_then_each_regression_with_its_problem_and_link_then_fixes_new_and_vanished()
    {
        const string regressed = "lenet/pickle/pytorch-2.6->torchsharp-0.107/default";
        const string fixedCell = "gru/safetensors/torchsharp-0.107->torchsharp-0.107/default";
        const string vanished = "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107/default";
        const string added = "lenet/safetensors/pytorch-2.6->torchsharp-0.107/default";
        var oldRows = SyntheticReport.Baseline();
        var newRows = SyntheticReport.Baseline()
            .With(regressed, "fail", message: "bytes differ in fc1.weight", problem: "bytes", subject: "fc1.weight")
            .With(fixedCell, "pass", 0);
        newRows.RemoveAll(r => r.Cell == vanished);
        newRows.Add(new SyntheticReport.Row(added, "pass", 0));
        var md = Compare(oldRows, newRows).Markdown("https://ci.example/run/7/compatibility.html");

        var order = new[] { "## Conformance comparison", "❌ **2 regressions**", "### Regressions (2)", "### Fixes (1)", "### New cells (1)", "### Vanished cells (1)", "### Totals" }
            .Select(h => (h, at: md.IndexOf(h, StringComparison.Ordinal))).ToList();
        Assert.All(order, o => Assert.True(o.at >= 0, $"missing {o.h}:\n{md}"));
        Assert.Equal(order.OrderBy(o => o.at).Select(o => o.h), order.Select(o => o.h));
        // The regression names its problem code and subject, and links to the cell in the new run's HTML report.
        Assert.Contains($"`{regressed}` | pass → fail | bytes: fc1.weight | [detail](https://ci.example/run/7/compatibility.html#{ReportHtml.CellAnchor(regressed)}) |", md);
        // A vanished pass is a regression too, without a link (the new report has no such cell).
        Assert.Contains($"`{vanished}` | pass → (vanished) |  |  |", md);
        Assert.Contains($"`{fixedCell}` | fail | pass |", md);
    }

    [Fact]
    public void The_summary_stays_under_GitHubs_size_limit_for_any_number_of_changes()
    {
        var long_ = new string('x', 2_000);
        var oldRows = Enumerable.Range(0, 40_000).Select(i => new SyntheticReport.Row($"case{i}/pickle/pytorch-2.6->torchsharp-0.107/default", i % 2 == 0 ? "pass" : "fail", 0, long_)).ToList();
        var newRows = oldRows.Select((r, i) => r with { Outcome = i % 2 == 0 ? "fail" : "pass", Message = long_, Problem = "bytes", Subject = long_ }).ToList();
        newRows.AddRange(Enumerable.Range(0, 5_000).Select(i => new SyntheticReport.Row($"new{i}/pickle/pytorch-2.6->torchsharp-0.107/default", "pass", 0)));
        var md = Compare(oldRows, newRows).Markdown();
        Assert.True(md.Length <= RunComparison.MarkdownLimit, $"{md.Length:N0} characters");
        Assert.Contains("❌ **20,000 regressions**", md);
        Assert.Contains("### Regressions (20,000)", md);
        Assert.Contains("### Fixes (20,000)", md);
        Assert.Contains("### New cells (5,000)", md);
        // The first regressions are still listed, each with its link; what did not fit is counted.
        Assert.Contains($"`case0/pickle/pytorch-2.6->torchsharp-0.107/default` | pass → fail | bytes: xxx", md);
        Assert.Contains("more, in the JSON and HTML reports.", md);
    }
}
