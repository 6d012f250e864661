using Conformance.Orchestrator;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using PuppeteerSharp;

namespace Conformance.Tests;

/// <summary>The HTML report in a real headless browser (<see cref="HeadlessPage"/>).</summary>
[Trait("Category", "runtime")]
public sealed class HtmlReportBrowserSpecs : IDisposable
{
    private const string KnownCell = "lenet/pickle/pytorch-2.6->pytorch-2.6/mmap";
    private const string FailCell = "lenet/pickle/torchsharp-0.107->pytorch-2.6/default";
    private readonly string _tmp = Directory.CreateTempSubdirectory("html-report-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static RunResult Run()
    {
        var kf = new LedgerEntry("pybridge-deflate-mmap", [CellSelector.Of("*/*/*->*/mmap")], [new ExpectedProblem("bytes", null, "")], "PyBridge writes compressed entries, which mmap cannot map", "https://example.org/known/42", new DateOnly(2026, 1, 1), null, 1);
        CellResult R(string name, Outcome o, string msg = "", double abs = 0, LedgerEntry? d = null) =>
            new(Cell.Parse(name), o, msg, o == Outcome.Pass ? new OutputDiff(abs, abs, 0, true) : null, d);
        var runtimes = new[]
        {
            new RuntimeReport(new Runtime("pytorch-2.6", "pytorch", "2.6.0", "cpu", new Launch("dotnet", "w.dll"), Where: "rootfs"), null, new Dictionary<string, System.Text.Json.Nodes.JsonNode?>(), null),
            new RuntimeReport(new Runtime("torchsharp-0.107", "torchsharp", "0.107.0", "cpu", new Launch("dotnet", "t.dll"), Where: "rootfs"), null, new Dictionary<string, System.Text.Json.Nodes.JsonNode?>(), null),
        };
        var results = new[]
        {
            R("lenet/pickle/pytorch-2.6->pytorch-2.6/default", Outcome.Pass, "outputs within tolerance", abs: 2.5e-8),
            R(KnownCell, Outcome.KnownFailure, "conv1.weight: bytes differ", d: kf),
            R(FailCell, Outcome.Fail, "load_error: RuntimeError: fc3.weight <shape [10, 84]> & friends"),
            R("lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap", Outcome.NotApplicable, "not_applicable: no mmap"),
        };
        return new RunResult(runtimes, results, [], new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), 1.5);
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task A_click_on_a_cell_shows_its_details_without_console_errors()
    {
        var file = Path.Combine(_tmp, "compatibility.html");
        await File.WriteAllTextAsync(file, ReportHtml.Render(Run()));
        await using var opened = await HeadlessPage.OpenAsync(file, _tmp);
        var page = opened.Page;

        // Before any click no details show.
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>(
            "[...document.querySelectorAll('.cell-details')].filter(e => e.offsetParent !== null).length"));

        var known = await DetailsAfterClick(page, KnownCell);
        Assert.Contains(KnownCell, known);
        Assert.Contains("known_failure", known);
        Assert.Contains("conv1.weight: bytes differ", known);
        Assert.Contains("PyBridge writes compressed entries, which mmap cannot map", known);
        Assert.Contains("atol", known);
        var panel = await page.EvaluateFunctionAsync<string>("s => document.querySelector(s).getAttribute('href')", $"td[data-cell='{KnownCell}'] a");
        var link = await page.WaitForSelectorAsync($"{panel} a[href='https://example.org/known/42']", new WaitForSelectorOptions { Visible = true });
        Assert.NotNull(link);

        // Another click moves the details: the first panel hides, the failure's shows with its message as written.
        var fail = await DetailsAfterClick(page, FailCell);
        Assert.Contains("load_error: RuntimeError: fc3.weight <shape [10, 84]> & friends", fail);
        Assert.Null(await page.QuerySelectorAsync($"{panel}:target"));
        Assert.DoesNotContain("example.org", fail);

        // An overview cell leads to its (case, route) table.
        await page.ClickAsync("table td.fail a[href^='#grid-']");
        Assert.Equal("lenet via pickle", await page.EvaluateExpressionAsync<string>("document.querySelector(':target').textContent"));

        Assert.Empty(opened.Errors);
    }

    /// <summary>Clicks the grid cell named <paramref name="cell"/> and returns the text of the details that became visible.</summary>
    private static async Task<string> DetailsAfterClick(IPage page, string cell)
    {
        var selector = $"td[data-cell='{cell}'] a";
        var id = await page.EvaluateFunctionAsync<string>("s => document.querySelector(s).getAttribute('href')", selector);
        Assert.False(await page.EvaluateFunctionAsync<bool>("s => document.querySelector(s).offsetParent !== null", id), $"{id} shows before the click");
        await page.ClickAsync(selector);
        var details = await page.WaitForSelectorAsync(id, new WaitForSelectorOptions { Visible = true });
        Assert.NotNull(details);
        return await details.EvaluateFunctionAsync<string>("e => e.innerText");
    }
}
