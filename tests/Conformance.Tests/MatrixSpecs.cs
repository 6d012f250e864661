using System.Text.RegularExpressions;
using Conformance.Orchestrator;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Vocabulary;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>One test per cell (case, route, producer, consumer, mode): a failure names its cell.</summary>
[Trait("Category", "matrix")]
[Collection(MatrixCollection.Name)]
public sealed class MatrixSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    [SkippableTheory]
    [MemberData(nameof(MatrixFixture.CellNames), MemberType = typeof(MatrixFixture))]
    public void Cell_crosses_intact_or_fails_as_declared(string cell)
    {
        var r = fixture.Result(cell);
        output.WriteLine($"{r.Outcome.Wire()}: {r.Message}");
        foreach (var p in r.Problems) output.WriteLine($"  [{p.Code}] {p.Subject}: {p.Message}");
        if (r.Diff is { } d) output.WriteLine($"max abs diff {d.MaxAbs:g4}, max rel diff {d.MaxRel:g4}");
        if (r.Outcome == Outcome.Skipped) MatrixFixture.SkipOrFailWhenMissing(r.Message);
        Assert.True(r.Acceptable, $"{cell}: {r.Outcome.Wire()}: {r.Message}");
        switch (r.Outcome)
        {
            case Outcome.Pass:
                Assert.Empty(r.Problems);
                Assert.Null(r.Declared);
                break;
            case Outcome.NotApplicable:
                // It names who lacks the capability, and no ledger entry claims the cell.
                Assert.Matches($"^not_applicable: (consumer {Regex.Escape(r.Cell.Consumer)}|producer {Regex.Escape(r.Cell.Producer)}): .+", r.Message);
                Assert.Null(r.Declared);
                break;
            case Outcome.KnownFailure:
                // Checked again here, apart from the ledger's own code: every problem is one the entry names.
                Assert.NotEmpty(r.Problems);
                var unnamed = r.Problems.Where(p => !r.Declared!.Problems.Any(x => x.Matches(p))).ToList();
                Assert.True(unnamed.Count == 0, $"{cell}: entry {r.Declared!.Id} does not name: {string.Join("; ", unnamed)}");
                break;
        }
    }

    [Fact]
    public void The_ledger_holds_no_error_after_the_whole_matrix()
    {
        var errors = fixture.Run.LedgerErrors;
        Assert.True(errors.Count == 0, "known-failures.json: " + string.Join("\n", errors));
    }

    [SkippableFact]
    public void Every_expected_runtime_really_ran()
    {
        var missing = fixture.Run.Runtimes.Where(r => !r.Runtime.Available).Select(r => $"{r.Runtime.Id}: {r.Runtime.MissingReason}").ToList();
        MatrixFixture.SkipOrFailWhenMissing(missing.Count == 0 ? null : string.Join("; ", missing));
        var broken = fixture.Run.Runtimes.Where(r => r.Error is not null).Select(r => $"{r.Runtime.Id}: {r.Error}").ToList();
        Assert.True(broken.Count == 0, string.Join("\n", broken));
        // Every planned cell ran, and every runtime passed cells both as producer and as consumer, for every case.
        Assert.Equal(MatrixFixture.Suite.Cells.Select(c => c.Name).Order(), fixture.Run.Results.Select(r => r.Cell.Name).Order());
        var passes = fixture.Run.Results.Where(r => r.Outcome == Outcome.Pass).ToList();
        foreach (var rt in fixture.Run.Runtimes.Select(r => r.Runtime.Id))
        {
            Assert.True(passes.Any(p => p.Cell.Producer == rt), $"{rt} passed no cell as producer");
            Assert.True(passes.Any(p => p.Cell.Consumer == rt), $"{rt} passed no cell as consumer");
        }
        foreach (var c in MatrixFixture.Suite.Cells.Select(c => c.Case).Distinct())
            Assert.True(passes.Any(p => p.Cell.Case == c), $"case {c}: no cell passed");
        output.WriteLine(ReportText.Console(fixture.Run));
    }

    [SkippableFact]
    public void The_report_has_the_fields_its_readers_rely_on()
    {
        var json = ReportJson.Build(fixture.Run);
        foreach (var rt in json["runtimes"]!.AsArray())
        {
            Assert.Matches("^(pytorch|torchsharp)-[0-9]+\\.[0-9]+(\\.[0-9]+-[0-9A-Za-z.-]+)?(\\+(pybridge|torchcheckpoints))?$", rt!["id"]!.GetValue<string>());
            Assert.NotNull(rt["kind"]); Assert.NotNull(rt["version"]); Assert.NotNull(rt["device"]);
        }
        var results = json["results"]!.AsArray();
        Assert.Equal(fixture.Run.Results.Count, results.Count);
        foreach (var r in results)
            foreach (var field in new[] { "case", "producer", "consumer", "route", "mode", "outcome", "message" })
                Assert.True(r![field] is not null, $"result {r!["cell"]} lacks {field}");
        Assert.Equal(fixture.Run.SummaryLine(), json["summary"]!["line"]!.GetValue<string>());
    }
}
