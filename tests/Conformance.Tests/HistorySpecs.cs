using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;

namespace Conformance.Tests;

/// <summary>Three runs with planted changes, given out of order: the series the history page is built from.</summary>
internal static class PlantedSeries
{
    public const string Flips = "lenet/pickle/pytorch-2.6->torchsharp-0.107/default";        // pass, fail (run 2), pass (run 3)
    public const string Declared = "lenet/pickle/torchsharp-0.107->pytorch-2.6/default";      // pass, known failure from run 2 on
    public const string Appears = "gru/safetensors/pytorch-2.6->torchsharp-0.107/default";   // only in run 3
    public const string Fixed = "gru/safetensors/torchsharp-0.107->torchsharp-0.107/default"; // known failure in runs 1-2, pass in run 3

    public static List<(string Source, JsonNode Report)> Reports()
    {
        var run1 = SyntheticReport.Baseline().With(Fixed, "known_failure", message: "load_error", problem: "load_error", ledger: "old-entry");
        var run2 = SyntheticReport.Baseline()
            .With(Flips, "fail", message: "fc1.weight: bytes differ", problem: "bytes", subject: "fc1.weight")
            .With(Declared, "known_failure", message: "bytes differ", problem: "bytes", ledger: "mmap-entry")
            .With(Fixed, "known_failure", message: "load_error", problem: "load_error", ledger: "old-entry");
        var run3 = SyntheticReport.Baseline()
            .With(Declared, "known_failure", message: "bytes differ", problem: "bytes", ledger: "mmap-entry")
            .With(Fixed, "pass", 0);
        run3.Add(new SyntheticReport.Row(Appears, "pass", 0));
        JsonNode At(List<SyntheticReport.Row> rows, string when, string commit)
        {
            var r = SyntheticReport.Build(rows);
            r["generated"] = when;
            r["commit"] = commit;
            return r;
        }
        // Given newest first: the history orders them by when they ran.
        return
        [
            ("run3.json", At(run3, "2026-03-01T00:00:00+00:00", "cccccccc33")),
            ("run1.json", At(run1, "2026-01-01T00:00:00+00:00", "aaaaaaaa11")),
            ("run2.json", At(run2, "2026-02-01T00:00:00+00:00", "bbbbbbbb22")),
        ];
    }
}

[Trait("Category", "unit")]
public sealed class HistorySpecs
{
    [Fact]
    public void Each_cell_that_changed_shows_the_run_it_last_changed_in_and_what_to()
    {
        var h = History.Build(PlantedSeries.Reports());
        Assert.Equal(["#1 aaaaaaaa 2026-01-01", "#2 bbbbbbbb 2026-02-01", "#3 cccccccc 2026-03-01"], h.Runs.Select(r => r.Label));
        Assert.Equal(["run1.json", "run2.json", "run3.json"], h.Runs.Select(r => r.Source));

        var byCell = h.Changed.ToDictionary(c => c.Cell);
        Assert.Equal(4, h.Changed.Count);
        Assert.Equal(SyntheticReport.Baseline().Count - 3, h.Unchanged);
        Assert.Equal((2, "fail", "pass"), (byCell[PlantedSeries.Flips].LastChangedRun, byCell[PlantedSeries.Flips].From, byCell[PlantedSeries.Flips].To));
        Assert.Equal((1, "pass", "known_failure"), (byCell[PlantedSeries.Declared].LastChangedRun, byCell[PlantedSeries.Declared].From, byCell[PlantedSeries.Declared].To));
        Assert.Equal((2, null, "pass"), (byCell[PlantedSeries.Appears].LastChangedRun, byCell[PlantedSeries.Appears].From, byCell[PlantedSeries.Appears].To));
        Assert.Equal((2, "known_failure", "pass"), (byCell[PlantedSeries.Fixed].LastChangedRun, byCell[PlantedSeries.Fixed].From, byCell[PlantedSeries.Fixed].To));
        Assert.Equal([null, null, "pass"], byCell[PlantedSeries.Appears].Outcomes);
        // Latest change first.
        Assert.Equal(1, h.Changed[^1].LastChangedRun);
    }

    [Fact]
    public void Each_ledger_entry_shows_since_when_it_has_held_and_when_it_stopped()
    {
        var h = History.Build(PlantedSeries.Reports());
        var mmap = Assert.Single(h.Ledger, l => l.Id == "mmap-entry");
        Assert.Equal((1, (int?)null, 1), (mmap.HeldSince, mmap.LastHeld, mmap.CellsNow));
        var old = Assert.Single(h.Ledger, l => l.Id == "old-entry");
        Assert.Equal((0, (int?)1, 0), (old.HeldSince, old.LastHeld, old.CellsNow));
        var md = h.Markdown();
        Assert.Contains($"| `{PlantedSeries.Flips}` | #3 cccccccc 2026-03-01 | fail → pass |", md);
    }

    [Fact]
    public void A_baseline_takes_its_place_in_a_series_like_the_report_it_was_made_from()
    {
        var reports = PlantedSeries.Reports();
        var asBaselines = reports.Select(r => (r.Source, Baseline.Expand(JsonNode.Parse(Baseline.Write(Baseline.From(r.Report, ReportFile.Str(r.Report, "commit"), r.Source)))!, r.Source))).ToList();
        var a = History.Build(reports);
        var b = History.Build(asBaselines);
        Assert.Equal(a.Runs.Select(r => r.Label), b.Runs.Select(r => r.Label));
        Assert.Equal(a.Changed.Select(c => (c.Cell, c.LastChangedRun, c.From, c.To)), b.Changed.Select(c => (c.Cell, c.LastChangedRun, c.From, c.To)));
        Assert.Equal(a.Ledger, b.Ledger);
    }
}

/// <summary>The history page in a real headless browser: each planted change on its row, with its run.</summary>
[Trait("Category", "runtime")]
public sealed class HistoryPageBrowserSpecs : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("history-page-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [SkippableFact(Timeout = 120_000)]
    public async Task The_page_shows_each_planted_change_with_its_run_and_each_entry_since_when_it_held()
    {
        HeadlessPage.RequireChromium();
        var dir = Path.Combine(_tmp, "reports");
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        foreach (var (source, report) in PlantedSeries.Reports())
        {
            var f = Path.Combine(dir, source);
            File.WriteAllText(f, report.ToJsonString());
            files.Add(f);
        }
        // Through the CLI, as the workflow builds it.
        var cli = Path.Combine(Conformance.Orchestrator.Runtimes.RepoLayout.Find().Root, "harness", "Conformance.Cli", "bin", TestPaths.Configuration, "net10.0", "conformance.dll");
        var (code, text) = Shell.Run($"dotnet {cli} history {string.Join(" ", files)} --out {_tmp}/page", TimeSpan.FromMinutes(2));
        Assert.True(code == 0, text);
        Assert.Contains("3 runs, 4 cells changed at least once", text);

        await using var opened = await HeadlessPage.OpenAsync(Path.Combine(_tmp, "page", "history.html"), _tmp);
        var page = opened.Page;
        async Task<string[]> Row(string cell) => await page.EvaluateFunctionAsync<string[]>(
            "c => { const r = [...document.querySelectorAll('tr.change')].find(r => r.dataset.cell === c); return r ? [r.dataset.run, r.innerText, String(r.offsetParent !== null)] : []; }", cell);

        foreach (var (cell, run, change) in new[]
                 {
                     (PlantedSeries.Flips, "#3 cccccccc 2026-03-01", "fail → pass"),
                     (PlantedSeries.Fixed, "#3 cccccccc 2026-03-01", "known_failure → pass"),
                     (PlantedSeries.Appears, "#3 cccccccc 2026-03-01", "(absent) → pass"),
                     (PlantedSeries.Declared, "#2 bbbbbbbb 2026-02-01", "pass → known_failure"),
                 })
        {
            var row = await Row(cell);
            Assert.True(row.Length == 3, $"no row for {cell}");
            Assert.Equal(run, row[0]);
            Assert.Contains(run, row[1]);
            Assert.Contains(change, row[1]);
            Assert.Equal("true", row[2]);
        }
        // The summary over time has a row and a bar per run; the ledger rows say since when each entry held.
        Assert.Equal(3, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#summary + table tr[data-run] .bar').length"));
        Assert.Equal("#2 bbbbbbbb 2026-02-01", await page.EvaluateExpressionAsync<string>("document.querySelector('tr.entry[data-entry=\"mmap-entry\"]').dataset.since"));
        Assert.Contains("#2 bbbbbbbb 2026-02-01 (no longer holds)", await page.EvaluateExpressionAsync<string>("document.querySelector('tr.entry[data-entry=\"old-entry\"]').innerText"));
        Assert.Empty(opened.Errors);
    }
}
