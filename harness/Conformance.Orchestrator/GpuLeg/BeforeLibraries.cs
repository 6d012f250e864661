using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.GpuLeg;

/// <summary>
/// GPU runs made before the .NET library became a matrix axis name the TorchSharp fixture set bare
/// (<c>torchsharp-0.107@golden</c>, <c>fixtures/torchsharp-0.107/lenet.pickle.pt</c>). Then, a state-dict
/// route's TorchSharp files were its first library's (cases.json's route <c>libraries</c>: PyBridge's,
/// and TorchCheckpoints' on <c>checkpoint</c>), and they now live in that library's set: such a name is
/// read as that set's, so the archive is judged under today's ledger and fixtures as it was made.
/// </summary>
public static class BeforeLibraries
{
    /// <summary>The library-era name of a producer id on a route: <c>torchsharp-0.107@golden</c> on pickle → <c>torchsharp-0.107+pybridge@golden</c>; anything else unchanged.</summary>
    public static string Producer(string id, string route)
    {
        if (!id.StartsWith(RuntimeKinds.TorchSharp + "-", StringComparison.Ordinal) || Runtime.LibraryOf(id) is not null) return id;
        if (Catalogue.LibrariesOf(route) is not [var first, ..]) return id;
        var golden = GoldenFixture.IsGolden(id);
        var bare = golden ? id[..^GoldenFixture.Suffix.Length] : id;
        var device = Runtime.DeviceOf(bare);
        var plain = Runtime.WithoutDevice(bare);
        return $"{plain}+{first}{(device == Runtime.Cpu ? "" : "-" + device)}{(golden ? GoldenFixture.Suffix : "")}";
    }

    public static Cell Upgrade(Cell cell) => cell with { Producer = Producer(cell.Producer, cell.Route), Consumer = Producer(cell.Consumer, cell.Route) };

    /// <summary>One gpu-run.json observation in today's names: its cell, its fixture set and the fixture's path.</summary>
    public static void Upgrade(JsonObject observation)
    {
        if (observation["cell"]?.GetValue<string>() is not { } name) return;
        var cell = Cell.Parse(name);
        var upgraded = Upgrade(cell);
        if (upgraded == cell) return;
        observation["cell"] = upgraded.Name;
        if (observation["set"]?.GetValue<string>() is { } set)
        {
            var newSet = Producer(set, cell.Route);
            observation["set"] = newSet;
            if (observation["artifact"]?.GetValue<string>() is { } artifact)
                observation["artifact"] = artifact.Replace($"fixtures/{set}/", $"fixtures/{newSet}/", StringComparison.Ordinal);
        }
    }
}
