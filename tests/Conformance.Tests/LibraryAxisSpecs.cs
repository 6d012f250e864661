using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>The .NET library as a matrix axis: its runtime ids, the ledger's library field, the per-library overview and the report's remedy.</summary>
[Trait("Category", "unit")]
public sealed class LibraryAxisSpecs
{
    private static CellResult R(string cell, Outcome outcome) => new(Cell.Parse(cell), outcome, "");

    [Fact]
    public void A_library_runtime_id_names_kind_version_library_and_device_and_each_part_reads_back()
    {
        var cpu = Runtime.Missing("torchsharp-0.107", "t");
        var pb = cpu.WithLibrary("pybridge");
        Assert.Equal("torchsharp-0.107+pybridge", pb.Id);
        Assert.Equal("pybridge", pb.Library);
        var cuda = Runtime.TorchSharpCuda(cpu with { Launch = new Launch("x") }).WithLibrary("torchcheckpoints");
        Assert.Equal("torchsharp-0.107+torchcheckpoints-cuda", cuda.Id);
        Assert.Equal("cuda", Runtime.DeviceOf(cuda.Id));
        Assert.Equal("torchcheckpoints", Runtime.LibraryOf("torchsharp-0.107+torchcheckpoints-cuda@golden"));
        Assert.Equal("torchsharp-0.107-cuda@golden", Runtime.WithoutLibrary("torchsharp-0.107+torchcheckpoints-cuda@golden"));
        Assert.Null(Runtime.LibraryOf("pytorch-2.6@golden"));
        Assert.Equal(["pybridge", "torchcheckpoints"], Catalogue.LibrariesOf("pickle"));
        Assert.Equal(["torchcheckpoints"], Catalogue.LibrariesOf("checkpoint"));
        Assert.Empty(Catalogue.LibrariesOf("torchscript_script"));
    }

    private const string Entry = """{"id":"x",LIB"cells":[{"cases":["lenet"],"routes":["pickle"],"producers":["pytorch-*"],"consumers":["CONSUMER"],"modes":["default"]}],"problems":[{"code":"bytes","message":"x"}],"reason":"r","link":"https://x","added":"2026-01-01","max_cells":1}""";

    private static FailureLedger Ledger(string library, string consumer) =>
        FailureLedger.Parse($$"""{"entries":[{{Entry.Replace("LIB", library).Replace("CONSUMER", consumer)}}]}""", "test.json");

    [Fact]
    public void A_ledger_entry_on_a_librarys_cells_names_that_library_and_only_a_library_its_blocks_name()
    {
        Assert.Equal("pybridge", Ledger("\"library\":\"pybridge\",", "torchsharp-*+pybridge").Entries.Single().Library);
        Assert.Contains("needs \"library\"", Assert.Throws<FormatException>(() => Ledger("", "torchsharp-*+pybridge")).Message);
        Assert.Contains("needs \"library\"", Assert.Throws<FormatException>(() => Ledger("\"library\":\"torchcheckpoints\",", "torchsharp-*+pybridge")).Message);
        Assert.Contains("but no block names its runtimes", Assert.Throws<FormatException>(() => Ledger("\"library\":\"pybridge\",", "pytorch-*")).Message);
        Assert.Contains("is not one of cases.json's libraries", Assert.Throws<FormatException>(() => Ledger("\"library\":\"onnx\",", "torchsharp-*+onnx")).Message);
        // An entry on PyBridge's cells never declares TorchCheckpoints' cell of the same file.
        var entry = Ledger("\"library\":\"pybridge\",", "torchsharp-*+pybridge").Entries.Single();
        Assert.True(entry.Matches(Cell.Parse("lenet/pickle/pytorch-2.6->torchsharp-0.107+pybridge/default")));
        Assert.False(entry.Matches(Cell.Parse("lenet/pickle/pytorch-2.6->torchsharp-0.107+torchcheckpoints/default")));
    }

    private static readonly IReadOnlyList<CellResult> Run =
    [
        R("lenet/pickle/pytorch-2.6->pytorch-2.6/default", Outcome.Pass),
        R("lenet/pickle/pytorch-2.6->torchsharp-0.107+pybridge/default", Outcome.KnownFailure),
        R("lenet/pickle/pytorch-2.6->torchsharp-0.107+torchcheckpoints/default", Outcome.Pass),
        R("lenet/pickle/torchsharp-0.107+torchcheckpoints->pytorch-2.6/default", Outcome.Pass),
        R("lenet/pickle/torchsharp-0.107+pybridge->torchsharp-0.107+torchcheckpoints/default", Outcome.Fail),
        R("gru/pickle/pytorch-2.6->torchsharp-0.107+pybridge/default", Outcome.Fail),
        R("gru/pickle/pytorch-2.6->torchsharp-0.107+torchcheckpoints/default", Outcome.Fail),
        R("lenet/torchscript_script/pytorch-2.6->torchsharp-0.107/default", Outcome.Pass),
    ];

    [Fact]
    public void The_overview_has_a_row_per_route_and_TorchSharp_side_PyBridge_next_to_TorchCheckpoints()
    {
        var rows = LibraryTable.Rows(LibraryTable.Of(Run));
        Assert.Equal([("pickle", "PyBridge"), ("pickle", "TorchCheckpoints"), ("torchscript_script", "TorchSharp")], rows.Select(r => (r.Route, r.Side)));
        // PyTorch → TorchSharp, TorchSharp → PyTorch, TorchSharp → TorchSharp (by the reader's library), PyTorch → PyTorch.
        Assert.Equal(["0 / 1 / **1**", "—", "—", "1 / 0 / 0"], rows[0].Counts);
        Assert.Equal(["1 / 0 / **1**", "1 / 0 / 0", "0 / 0 / **1**", "1 / 0 / 0"], rows[1].Counts);
        Assert.Contains("| `pickle` | PyBridge | 0 / 1 / **1** |", LibraryTable.Markdown(LibraryTable.Of(Run)));
    }

    [Fact]
    public void The_report_names_TorchCheckpoints_where_PyBridge_fails_and_TorchCheckpoints_reads_the_same_file()
    {
        var found = LibraryRemedy.Find(Run);
        var (route, cells) = Assert.Single(found);
        Assert.Equal("pickle", route);
        // gru: TorchCheckpoints fails too, so no remedy; lenet: it passes.
        Assert.Equal(["lenet/pickle/pytorch-2.6->torchsharp-0.107+pybridge/default"], cells.Select(c => c.Name));
        Assert.Contains("TorchCheckpoints reads it: StateDict.Load(path)", LibraryRemedy.Markdown(Run));
        Assert.Equal("", LibraryRemedy.Markdown([Run[0]]));
        // optimizer_state's folder holds the optimizer's file too: its remedy names both readers.
        var optimizer = new[]
        {
            R("ckpt_adam/optimizer_state/pytorch-2.6->torchsharp-0.107+pybridge/default", Outcome.KnownFailure),
            R("ckpt_adam/optimizer_state/pytorch-2.6->torchsharp-0.107+torchcheckpoints/default", Outcome.Pass),
        };
        Assert.Contains("`optimizer_state`: TorchCheckpoints reads it: model.load_pytorch(path) for the model's file, optimizer.load_pytorch(path) for the optimizer's.", LibraryRemedy.Markdown(optimizer));
    }
}
