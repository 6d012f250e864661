using Conformance.Orchestrator.KnownFailures;
using Conformance.Orchestrator.Matrix;

namespace Conformance.Tests;

public sealed class KnownFailureSpecs
{
    private static readonly Cell Mmap = Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap");
    private static readonly Cell Default = Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.6/default");

    private static KnownFailureList List(string cell, string message = "load_error: RuntimeError") =>
        KnownFailureList.Parse($$"""{"entries":[{"cell":"{{cell}}","message":"{{message}}","reason":"r","link":"https://example.org/1"}]}""", "test.json");

    [Fact]
    public void A_cell_that_fails_as_declared_is_a_known_failure()
    {
        var r = List("*/pickle/torchsharp-*->pytorch-*/mmap").Apply(new CellResult(Mmap, Outcome.Fail, "load_error: RuntimeError: boom"));
        Assert.Equal(Outcome.KnownFailure, r.Outcome);
        Assert.Equal("https://example.org/1", r.Declared!.Link);
    }

    [Fact]
    public void A_declared_cell_that_now_passes_fails_as_stale_and_says_how_to_fix_the_list()
    {
        var r = List("*/mmap").Apply(new CellResult(Mmap, Outcome.Pass, ""));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.StartsWith("stale known failure: lenet/pickle/torchsharp-0.107->pytorch-2.6/mmap now passes", r.Message);
        Assert.Contains("remove or narrow that entry", r.Message);
    }

    [Fact]
    public void A_declared_cell_that_is_not_applicable_stays_not_applicable()
    {
        var r = List("*/mmap").Apply(new CellResult(Mmap, Outcome.NotApplicable, "not_applicable: no mmap"));
        Assert.Equal(Outcome.NotApplicable, r.Outcome);
    }

    [Fact]
    public void Patterns_accept_alternatives_in_braces()
    {
        var list = List("{lenet,gru}/pickle/{pytorch-*->torchsharp-*,torchsharp-*->pytorch-*}/mmap", "{load_error,*: bytes differ}*");
        Assert.Equal(Outcome.KnownFailure, list.Apply(new CellResult(Mmap, Outcome.Fail, "conv1.weight: bytes differ")).Outcome);
        Assert.Equal(Outcome.KnownFailure, list.Apply(new CellResult(Mmap, Outcome.Fail, "load_error: x")).Outcome);
        Assert.Null(list.For(Cell.Parse("nested/pickle/torchsharp-0.107->pytorch-2.6/mmap")));
        Assert.Null(list.For(Cell.Parse("lenet/pickle/pytorch-2.6->pytorch-2.6/mmap")));
    }

    [Fact]
    public void A_declared_cell_that_fails_with_another_message_stays_an_unexpected_failure()
    {
        var r = List("*/mmap").Apply(new CellResult(Mmap, Outcome.Fail, "worker_crash: died"));
        Assert.Equal(Outcome.Fail, r.Outcome);
        Assert.Contains("expected a message starting \"load_error: RuntimeError\" but got: worker_crash: died", r.Message);
    }

    [Fact]
    public void A_message_prefix_may_hold_wildcards()
    {
        var list = List("*/mmap", "*: bytes differ");
        Assert.Equal(Outcome.KnownFailure, list.Apply(new CellResult(Mmap, Outcome.Fail, "conv1.weight: bytes differ (float32)")).Outcome);
        Assert.Equal(Outcome.Fail, list.Apply(new CellResult(Mmap, Outcome.Fail, "outputs: max abs diff 1")).Outcome);
    }

    [Fact]
    public void Undeclared_cells_are_left_alone_and_an_entry_matching_no_cell_is_reported()
    {
        var list = List("*/mmap");
        Assert.Equal(Outcome.Fail, list.Apply(new CellResult(Default, Outcome.Fail, "x")).Outcome);
        Assert.Empty(list.Unmatched([Mmap, Default]));
        Assert.Equal("*/mmap", Assert.Single(list.Unmatched([Default])).Pattern);
    }

    [Fact]
    public void An_entry_without_a_reason_or_link_is_refused_naming_the_file_and_entry()
    {
        var e = Assert.Throws<FormatException>(() => KnownFailureList.Parse("""{"entries":[{"cell":"*","message":"x","reason":"r"}]}""", "kf.json"));
        Assert.Equal("kf.json: entries[0] needs a non-empty \"link\"", e.Message);
    }

    [Fact]
    public void The_repositorys_list_parses_and_every_entry_has_a_reason_and_link()
    {
        var list = KnownFailureList.Load(Conformance.Orchestrator.Runtimes.RepoLayout.Find().KnownFailuresFile);
        Assert.All(list.Entries, e => Assert.StartsWith("https://", e.Link));
    }
}
