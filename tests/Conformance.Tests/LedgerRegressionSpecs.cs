using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// A known-failure entry promises that nothing else is wrong in its cells. For every entry of the
/// repository's ledger, a regression is planted next to a real known failure from the matrix run,
/// and the ledger must turn the cell back into a failure.
/// </summary>
[Trait("Category", "matrix")]
[Collection(MatrixCollection.Name)]
public sealed class LedgerRegressionSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    private static FailureLedger RepoLedger => MatrixFixture.Suite.Ledger;

    public static IEnumerable<object[]> EntryIds() => RepoLedger.Entries.Select(e => new object[] { e.Id });

    private CellResult KnownCell(string entryId) =>
        fixture.Run.Results.FirstOrDefault(r => r.Outcome == Outcome.KnownFailure && r.Declared?.Id == entryId)
        ?? throw new InvalidOperationException($"entry {entryId} declared no known failure in this run");

    private static CellResult Plant(CellResult known, params Problem[] planted) =>
        known with { Outcome = Outcome.Fail, Declared = null, Problems = [.. known.Problems, .. planted] };

    [SkippableTheory]
    [MemberData(nameof(EntryIds))]
    public void A_regression_planted_next_to_each_entrys_finding_is_caught(string entryId)
    {
        var declared = RepoLedger.Entries.Single(e => e.Id == entryId);
        Skip.If(declared.Awaits is not null && !fixture.Run.Results.Any(r => r.Declared?.Id == entryId),
            $"dormant: {entryId} awaits {declared.Awaits}; GpuLegSpecs and GpuCheckSpecs plant beside its cells on the judged GPU rows");
        AssertPlantsCaught(RepoLedger, KnownCell(entryId), output);
    }

    /// <summary>The cell, a known failure under its entry, stays known unchanged and fails with any problem planted beside its own.</summary>
    internal static void AssertPlantsCaught(FailureLedger ledger, CellResult known, ITestOutputHelper output)
    {
        var entry = known.Declared!;
        var entryId = entry.Id;
        var RepoLedger = ledger;
        output.WriteLine($"{known.Cell.Name}: {known.Message}");
        // Unchanged, the cell is still the known failure (the plant below is what changes it).
        Assert.Equal(Outcome.KnownFailure, RepoLedger.Apply(Plant(known)).Outcome);
        // A problem of a code the entry does not name.
        var other = new Problem(ProblemCodes.Dtype, "fc.weight", "fc.weight: dtype float32 became float64");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, other)).Outcome);
        // For each expected problem, the same code with another subject or message, or a measure past its bound.
        foreach (var x in entry.Problems)
        {
            var planted = x.MaxMeasure is { } bound
                ? new Problem(x.Code, x.Subject ?? "planted", x.MessagePrefix + " (planted)") { Measure = bound * 1000 }
                : x.Subject is not null
                    ? new Problem(x.Code, x.Subject + ",planted", x.MessagePrefix)
                    : x.MessagePrefix.Length > 0 ? new Problem(x.Code, "planted", "planted: " + x.MessagePrefix) : null;
            if (planted is null) continue; // "any message of this code", said explicitly (every tensor of a corrupted file)
            var r = RepoLedger.Apply(Plant(known, planted));
            Assert.True(r.Outcome == Outcome.Fail, $"{entryId} hid a planted {planted.Code} problem: {planted.Subject}: {planted.Message}");
            Assert.Contains("does not name", r.Message);
        }
    }

    [SkippableFact]
    public void An_lr_that_changed_on_load_is_not_hidden_by_the_dropped_options_entry()
    {
        var known = KnownCell("torchsharp-optimizer-maximize-dropped");
        var lr = new Problem(ProblemCodes.ParamGroups, "param_groups[0].lr", "param_groups[0].lr: 0.001 became 0.002");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, lr)).Outcome);
        var state = new Problem(ProblemCodes.OptimizerState, "state[0].sum", "state[0].sum: float32 [6, 3, 5, 5] sha256 aa… became bb…");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, state)).Outcome);
    }

    [SkippableFact]
    public void An_epoch_or_a_larger_divergence_is_not_hidden_by_the_radam_entry()
    {
        var known = KnownCell("torchsharp-radam-lr-twice");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, new Problem(ProblemCodes.Epoch, "epoch", "epoch: 3 became 4"))).Outcome);
        var resume = known.Problems.Single(p => p.Code == ProblemCodes.Resume);
        var worse = known with { Outcome = Outcome.Fail, Declared = null, Problems = [resume with { Measure = 0.25 }] };
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(worse).Outcome);
    }

    [SkippableFact]
    public void A_bytes_regression_is_not_hidden_by_the_torchscript_nonpersistent_entry()
    {
        var known = KnownCell("pytorch-torchscript-saves-nonpersistent");
        var bytes = new Problem(ProblemCodes.Bytes, "fc.weight", "fc.weight: bytes differ (float32 [4, 6]; sha256 aa… became bb…)");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, bytes)).Outcome);
    }

    [SkippableFact]
    public void A_key_or_shape_regression_is_not_hidden_by_the_mmap_corruption_entry()
    {
        var known = KnownCell("pybridge-deflate-read-raw-by-mmap");
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, new Problem(ProblemCodes.MissingKeys, "fc3.bias", "Missing key(s) in state_dict: \"fc3.bias\""))).Outcome);
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(Plant(known, new Problem(ProblemCodes.Shape, "fc3.weight", "fc3.weight: shape [10, 84] became [84, 10]"))).Outcome);
    }

    [SkippableFact]
    public void Another_key_moving_is_not_hidden_by_a_key_order_entry()
    {
        var known = KnownCell("torchsharp-key-order-cnn_batchnorm");
        var order = known.Problems.Single(p => p.Code == ProblemCodes.KeyOrder);
        var moved = known with { Outcome = Outcome.Fail, Declared = null, Problems = [order with { Subject = order.Subject + ",conv.weight" }] };
        Assert.Equal(Outcome.Fail, RepoLedger.Apply(moved).Outcome);
    }

    [Fact]
    public void A_future_case_is_covered_by_no_entry()
    {
        foreach (var route in new[] { "pickle_legacy", "pickle" })
        foreach (var mode in new[] { "default", "mmap" })
            Assert.Empty(RepoLedger.EntriesFor(Cell.Parse($"future_case/{route}/pytorch-2.6->torchsharp-0.107/{mode}")));
        Assert.Empty(RepoLedger.EntriesFor(Cell.Parse("future_case/pickle_legacy/pytorch-2.6->pytorch-2.6/mmap")));
    }
}
