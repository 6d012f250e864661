using ApprovalTests;
using ApprovalTests.Reporters;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

[Trait("Category", "unit")]
[UseReporter(typeof(QuietReporter))]
public sealed class ReportSpecs
{
    private static RunResult Synthetic()
    {
        var kf = new LedgerEntry("pybridge-deflate-mmap", [CellSelector.Of("*/*/*->*/mmap")], [new ExpectedProblem("bytes", null, "")], "compressed entries", "https://example.org/kf", new DateOnly(2026, 1, 1), null, 1);
        CellResult R(string name, Outcome o, string msg = "", double abs = 0, LedgerEntry? d = null) =>
            new(Cell.Parse(name), o, msg, o == Outcome.Pass ? new OutputDiff(abs, abs, 0, true) : null, d);
        var runtimes = new[]
        {
            new RuntimeReport(new Runtime("pytorch-2.6", "pytorch", "2.6.0", "cpu", new Launch("dotnet", "w.dll"), Where: "rootfs"), null, new Dictionary<string, System.Text.Json.Nodes.JsonNode?>(), null),
            new RuntimeReport(Runtime.Missing("torchsharp-0.107", "host libstdc++ too old"), null, new Dictionary<string, System.Text.Json.Nodes.JsonNode?>(), "host libstdc++ too old"),
        };
        var results = new[]
        {
            R("lenet/pickle/pytorch-2.6->pytorch-2.6/default", Outcome.Pass),
            R("lenet/pickle/pytorch-2.6->pytorch-2.6/mmap", Outcome.KnownFailure, "conv1.weight: bytes differ", d: kf),
            R("lenet/pickle/pytorch-2.6->torchsharp-0.107/default", Outcome.Skipped, "consumer torchsharp-0.107 is missing"),
            R("lenet/pickle/torchsharp-0.107->pytorch-2.6/default", Outcome.Fail, "load_error: RuntimeError: bad | pipe"),
            R("lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap", Outcome.NotApplicable, "not_applicable: no mmap"),
        };
        return new RunResult(runtimes, results, [], new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), 1.5);
    }

    [Fact]
    public void The_markdown_report_reads_at_a_glance() => Approvals.Verify(ReportText.Markdown(Synthetic()));

    [Fact]
    public void The_console_table_has_a_row_per_direction_and_a_column_per_mode() => Approvals.Verify(ReportText.Console(Synthetic()));

    [Fact]
    public void The_summary_line_counts_every_outcome() =>
        Assert.Equal("CONFORMANCE SUITE FAILED: 1 passes, 1 known failures, 1 unexpected failures, 1 skips, 1 not applicable (1.5 s)", Synthetic().SummaryLine());

    [Fact]
    public void The_html_report_colours_each_cell_by_outcome()
    {
        var html = ReportHtml.Render(Synthetic());
        foreach (var o in new[] { "pass", "known_failure", "skipped", "fail", "not_applicable" }) Assert.Contains($"class=\"{o}\"", html);
        Assert.Contains("https://example.org/kf", html);
        Assert.Contains("<h2>Overview</h2>", html);
        Assert.Contains("<h2>Unexpected failures</h2>", html);
        // A click on a cell reveals its details panel (HtmlReportBrowserSpecs clicks it in chromium).
        // Its anchor is made from the cell's name alone, so compare's PR summary and the history page link to it.
        var anchor = ReportHtml.CellAnchor("lenet/pickle/torchsharp-0.107->pytorch-2.6/default");
        Assert.Matches("^cell-lenet-pickle-torchsharp-0-107--pytorch-2-6-default-[0-9a-f]{8}$", anchor);
        Assert.Contains($"data-cell=\"lenet/pickle/torchsharp-0.107-&gt;pytorch-2.6/default\"><a href=\"#{anchor}\">FAIL</a>", html);
        Assert.Contains($"<div class=\"cell-details\" id=\"{anchor}\">", html);
    }
}
