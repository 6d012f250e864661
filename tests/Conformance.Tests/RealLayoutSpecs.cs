using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;

namespace Conformance.Tests;

/// <summary>
/// The shapes real checkpoints come in. Hugging Face's folders (an artifact that is
/// a folder), keys behind a wrapper's prefix (a plain load must refuse them, naming the prefix and
/// the remedy), and the folder layout the PyTorch side writes, checked against transformers' names
/// and index schema with the host's real torch.
/// </summary>
[Trait("Category", "runtime")]
public sealed class RealLayoutSpecs
{
    private static readonly RepoLayout Repo = RepoLayout.Find();

    [Theory]
    [InlineData("RuntimeError: every key in the file starts with 'module.' (saved from DataParallel/DistributedDataParallel): strip the `module.` prefix (...): Error(s) in loading state_dict", true)]
    [InlineData("InvalidOperationException: The loaded state_dict is not identical to the target dictionary.", false)]
    [InlineData("RuntimeError: Error(s) in loading state_dict for Nested: Unexpected key(s) in state_dict: \"module.seq.0.weight\"", false)]
    [InlineData("RuntimeError: strip the `_orig_mod.` prefix", false)]
    [InlineData(null, false)]
    public void A_plain_load_of_module_prefixed_keys_must_be_refused_naming_the_prefix_and_the_remedy(string? error, bool passes)
    {
        var v = Judge.ComparePrefixError(error, "module.");
        Assert.Equal(passes, v.Passed);
        if (!passes) Assert.All(v.Problems, p => Assert.Equal(ProblemCodes.PrefixedKeys, p.Code));
    }

    [Fact]
    public void A_plain_load_that_succeeds_on_prefixed_keys_fails_its_cell_as_prefixed_keys()
    {
        var cell = new Cell("nested", RealLayouts.PrefixOrigMod, "pytorch-2.6", "torchsharp-0.107", "default");
        var spec = Catalogue.Case("nested");
        var expected = JsonNode.Parse("""{"tensors": [], "outputs": {"shape": [1], "values": [0.0]}}""")!;
        var loaded = new Reply.Answered(Conformance.Protocol.Response.Success(1, expected.DeepClone()));
        var v = CellJudge.Judge(cell, spec, expected, Observation.FromJson(expected), loaded, "/x/a.pt");
        Assert.Equal(Outcome.Fail, v.Outcome);
        Assert.Equal(ProblemCodes.PrefixedKeys, Assert.Single(v.Problems).Code);
        Assert.Contains("'_orig_mod.'", v.Message);
    }

    [Fact]
    public void Prefixed_routes_load_two_ways_and_hugging_face_folders_one_for_every_consumer_kind()
    {
        var nested = Catalogue.Case("nested");
        foreach (var kind in new[] { RuntimeKinds.PyTorch, RuntimeKinds.TorchSharp })
        {
            Assert.Equal(["default", RealLayouts.StripPrefix], Catalogue.LoadModes(nested, kind, RealLayouts.PrefixModule));
            Assert.Equal(["default"], Catalogue.LoadModes(Catalogue.Case("lenet"), kind, RealLayouts.HfBinSharded));
        }
        Assert.Contains(RealLayouts.PrefixOrigMod, Catalogue.RoutesOf(nested));
        Assert.Equal([Catalogue.Pickle, Catalogue.PickleLegacy, Catalogue.Safetensors, Catalogue.TorchSharpNative], Catalogue.RoutesOf(Catalogue.Case("quantized")));
        Assert.All(RealLayouts.HfRoutes, r => Assert.Equal(".hf", Catalogue.ExtensionOf(r)));
    }

    [Fact]
    public void A_folder_artifact_counts_as_written_only_with_a_non_empty_file_in_it()
    {
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "real-layouts", "tied.hf");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        Assert.Equal("is a folder without a non-empty file", ArtifactFiles.ArtifactMissing(dir));
        File.WriteAllText(Path.Combine(dir, "model.safetensors"), "");
        Assert.NotNull(ArtifactFiles.ArtifactMissing(dir));
        File.WriteAllText(Path.Combine(dir, "model.safetensors"), "x");
        Assert.Null(ArtifactFiles.ArtifactMissing(dir));
        Assert.Contains(dir + "/", ArtifactFiles.RemovePartial(dir));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Committed_folder_fixtures_are_golden_producers_with_their_observation_beside_them()
    {
        var folders = GoldenFixtures.Find(Repo.FixturesDir).Where(g => RealLayouts.IsFolder(g.Route)).ToList();
        Assert.Contains(folders, g => g is { Producer: "pytorch-2.6", Case: "tied_weights", Route: RealLayouts.HfSafetensors });
        Assert.All(folders, g =>
        {
            Assert.True(Directory.Exists(g.ArtifactPath), g.ArtifactPath);
            Assert.NotEmpty(g.Expected().Tensors);
        });
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task The_pytorch_side_writes_sharded_folders_with_transformers_file_names_and_index_schema()
    {
        await Task.Yield();
        var python = PythonCodecSpecs.HostPython();
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "real-layouts", "lenet.hf");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var script = $$"""
            import json, os, torch
            from torchconformance.worker import cases, layouts
            torch.manual_seed(0)
            model = cases.get("lenet").build()
            layouts.save("hf_bin_sharded", model, {{JsonValue.Create(dir)!.ToJsonString()}}, None)
            sd = model.state_dict()
            print(json.dumps({"files": sorted(os.listdir({{JsonValue.Create(dir)!.ToJsonString()}})), "keys": list(sd),
                              "bytes": sum(t.numel() * t.element_size() for t in sd.values())}))
            """;
        var (code, stdout, stderr) = Discovery.Run([python, "-c", script], TimeSpan.FromSeconds(100), ("PYTHONPATH", Repo.PythonPackageDir));
        Assert.True(code == 0, stderr);
        var seen = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        var files = seen["files"]!.AsArray().Select(f => f!.GetValue<string>()).ToList();
        var shards = files.Where(f => f != "pytorch_model.bin.index.json").ToList();
        Assert.Contains("pytorch_model.bin.index.json", files);
        Assert.True(shards.Count >= 2, $"lenet in {shards.Count} shard(s)");
        Assert.All(shards.Select((f, i) => (f, i)), s => Assert.Equal($"pytorch_model-{s.i + 1:D5}-of-{shards.Count:D5}.bin", s.f));
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "pytorch_model.bin.index.json")))!.AsObject();
        Assert.Equal(["metadata", "weight_map"], index.Select(kv => kv.Key));
        Assert.Equal(seen["bytes"]!.GetValue<long>(), index["metadata"]!["total_size"]!.GetValue<long>());
        var map = index["weight_map"]!.AsObject();
        Assert.Equal(seen["keys"]!.AsArray().Select(k => k!.GetValue<string>()).Order(StringComparer.Ordinal), map.Select(kv => kv.Key));
        Assert.All(map, kv => Assert.Contains(kv.Value!.GetValue<string>(), shards));
    }
}
