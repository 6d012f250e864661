using Conformance.Orchestrator;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>One test per cell (case, route, producer, consumer, mode): a failure names its cell.</summary>
[Collection(MatrixCollection.Name)]
public sealed class MatrixSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    [SkippableTheory]
    [MemberData(nameof(MatrixFixture.CellNames), MemberType = typeof(MatrixFixture))]
    public void Cell_crosses_intact_or_fails_as_declared(string cell)
    {
        var r = fixture.Result(cell);
        output.WriteLine($"{r.Outcome.Wire()}: {r.Message}");
        if (r.Diff is { } d) output.WriteLine($"max abs diff {d.MaxAbs:g4}, max rel diff {d.MaxRel:g4}");
        if (r.Outcome == Outcome.Skipped) MatrixFixture.SkipOrFailWhenMissing(r.Message);
        Assert.True(r.Acceptable, $"{cell}: {r.Outcome.Wire()}: {r.Message}");
        if (r.Outcome == Outcome.NotApplicable) Assert.False(string.IsNullOrWhiteSpace(r.Message), "not_applicable must name the missing capability");
        if (r.Outcome == Outcome.KnownFailure) Assert.NotNull(r.Declared);
    }

    [Fact]
    public void Every_known_failure_entry_matches_a_cell()
    {
        var unmatched = fixture.Run.UnmatchedKnownFailures;
        Assert.True(unmatched.Count == 0, "known-failures.json entries matching no cell (remove them): " + string.Join(", ", unmatched.Select(u => u.Pattern)));
    }

    [SkippableFact]
    public void Every_expected_runtime_really_ran()
    {
        var missing = fixture.Run.Runtimes.Where(r => !r.Runtime.Available).Select(r => $"{r.Runtime.Id}: {r.Runtime.MissingReason}").ToList();
        MatrixFixture.SkipOrFailWhenMissing(missing.Count == 0 ? null : string.Join("; ", missing));
        var broken = fixture.Run.Runtimes.Where(r => r.Error is not null).Select(r => $"{r.Runtime.Id}: {r.Error}").ToList();
        Assert.True(broken.Count == 0, string.Join("\n", broken));
        Assert.Contains(fixture.Run.Results, r => r.Outcome == Outcome.Pass);
        output.WriteLine(ReportText.Console(fixture.Run));
    }

    [SkippableFact]
    public void The_report_has_the_fields_its_readers_rely_on()
    {
        var json = ReportJson.Build(fixture.Run);
        foreach (var rt in json["runtimes"]!.AsArray())
        {
            Assert.Matches("^(pytorch|torchsharp)-[0-9]+\\.[0-9]+$", rt!["id"]!.GetValue<string>());
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
