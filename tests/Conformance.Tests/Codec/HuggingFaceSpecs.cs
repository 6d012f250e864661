using System.Text.Json.Nodes;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// Hugging Face save_pretrained folders in-process with <see cref="RawTensors"/>: each of the four layouts
/// written and read back, sharded as the suite's Python side shards (layouts.split_into_shards, at half the
/// model's bytes), the index as transformers dumps it, and each broken folder refused naming the folder or file.
/// </summary>
[Trait("Category", "unit")]
public sealed class HuggingFaceSpecs
{
    private static string Folder(string name)
    {
        var dir = CodecSpecs.Scratch("hf-" + name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        return dir;
    }

    /// <summary>A small model with tied weights: emb.weight and head.weight are one tensor.</summary>
    private static PyDict Model()
    {
        var emb = SafetensorsSpecs.Tensor(TorchDtype.Float32, [8, 4], 1);
        return new PyDict(ordered: true)
        {
            { "emb.weight", emb },
            { "layer.weight", SafetensorsSpecs.Tensor(TorchDtype.Float32, [4, 4], 2) },
            { "layer.bias", SafetensorsSpecs.Tensor(TorchDtype.Float32, [4], 3) },
            { "norm.weight", SafetensorsSpecs.Tensor(TorchDtype.BFloat16, [4], 4) },
            { "head.weight", emb },
        };
    }

    private static void AssertSame(PyDict expected, PyDict actual)
    {
        Assert.Equal(expected.Keys.Cast<string>().Order(StringComparer.Ordinal), actual.Keys.Cast<string>().Order(StringComparer.Ordinal));
        foreach (var key in expected.Keys)
        {
            var a = (RawTensor)expected[key]!;
            var b = (RawTensor)actual[key]!;
            Assert.Equal(a.Dtype, b.Dtype);
            Assert.Equal(a.Shape, b.Shape);
            Assert.Equal(a.ToContiguousBytes(), b.ToContiguousBytes());
        }
    }

    [Theory]
    [InlineData(true, "model.safetensors")]
    [InlineData(false, "pytorch_model.bin")]
    public void A_single_file_folder_round_trips(bool safetensors, string file)
    {
        var dir = Folder("single-" + safetensors);
        var model = Model();
        HuggingFace.SaveFolder(dir, model, RawTensors.Instance, safetensors);
        Assert.Equal([file], Directory.GetFiles(dir).Select(Path.GetFileName));
        var back = HuggingFace.LoadFolder(dir, RawTensors.Instance);
        AssertSame(model, back);
        if (safetensors)
            Assert.Contains(new KeyValuePair<string, string>("head.weight", "emb.weight"), Safetensors.Metadata(Path.Combine(dir, file)));
    }

    [Fact]
    public void Sharded_safetensors_split_at_half_the_model_with_the_alias_in_its_shard_and_the_index_as_transformers_dumps_it()
    {
        var dir = Folder("sharded-safetensors");
        var model = Model();
        long half = HuggingFace.HalfTheModel(model, RawTensors.Instance);
        Assert.Equal((8 * 4 * 4 + 16 * 4 + 4 * 4 + 4 * 2) / 2, half); // the tied tensor once
        HuggingFace.SaveFolder(dir, model, RawTensors.Instance, safetensors: true, maxShardBytes: half);
        // emb (128 bytes) fills the first shard (limit 108: a shard holds at least one tensor); the rest (88) the second.
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"],
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(
            "{\n  \"metadata\": {\n    \"total_size\": 216\n  },\n  \"weight_map\": {\n" +
            "    \"emb.weight\": \"model-00001-of-00002.safetensors\",\n    \"layer.bias\": \"model-00002-of-00002.safetensors\",\n" +
            "    \"layer.weight\": \"model-00002-of-00002.safetensors\",\n    \"norm.weight\": \"model-00002-of-00002.safetensors\"\n  }\n}\n",
            File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")));
        Assert.Equal([new("format", "pt"), new("head.weight", "emb.weight")], Safetensors.Metadata(Path.Combine(dir, "model-00001-of-00002.safetensors")));
        Assert.Equal([new("format", "pt")], Safetensors.Metadata(Path.Combine(dir, "model-00002-of-00002.safetensors")));
        var back = HuggingFace.LoadFolder(dir, RawTensors.Instance);
        AssertSame(model, back);
        Assert.Same(back["emb.weight"], back["head.weight"]);
    }

    [Fact]
    public void Sharded_bin_keeps_a_tied_name_in_its_tensors_shard_and_lists_every_name()
    {
        var dir = Folder("sharded-bin");
        var model = Model();
        HuggingFace.SaveFolder(dir, model, RawTensors.Instance, safetensors: false, maxShardBytes: HuggingFace.HalfTheModel(model, RawTensors.Instance));
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "pytorch_model.bin.index.json")))!;
        Assert.Equal(216, index["metadata"]!["total_size"]!.GetValue<long>());
        var map = index["weight_map"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        Assert.Equal("pytorch_model-00001-of-00002.bin", map["head.weight"]);
        Assert.Equal("pytorch_model-00001-of-00002.bin", map["emb.weight"]);
        Assert.Equal("pytorch_model-00002-of-00002.bin", map["norm.weight"]);
        var first = (PyDict)TorchCheckpoint.Load(Path.Combine(dir, "pytorch_model-00001-of-00002.bin"), RawTensors.Instance).Value!;
        Assert.Same(((RawTensor)first["emb.weight"]!).Storage, ((RawTensor)first["head.weight"]!).Storage); // one storage in the shard
        AssertSame(model, HuggingFace.LoadFolder(dir, RawTensors.Instance));
    }

    private static CheckpointFormatException Refused(string dir) =>
        Assert.ThrowsAny<CheckpointFormatException>(() => HuggingFace.LoadFolder(dir, RawTensors.Instance));

    [Fact]
    public void A_folder_without_weights_is_refused_naming_it_and_what_it_holds()
    {
        var dir = Folder("empty");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        var e = Refused(dir);
        Assert.StartsWith(dir + ": holds none of model.safetensors", e.Message);
        Assert.Contains("config.json", e.Message);
    }

    private static string ShardedWith(string name, Func<JsonObject, JsonObject> edit)
    {
        var dir = Folder(name);
        var model = Model();
        HuggingFace.SaveFolder(dir, model, RawTensors.Instance, safetensors: true, maxShardBytes: HuggingFace.HalfTheModel(model, RawTensors.Instance));
        var indexPath = Path.Combine(dir, "model.safetensors.index.json");
        File.WriteAllText(indexPath, edit(JsonNode.Parse(File.ReadAllText(indexPath))!.AsObject()).ToJsonString());
        return dir;
    }

    [Fact]
    public void A_missing_shard_is_refused_naming_the_index_the_shard_and_a_key()
    {
        var dir = ShardedWith("missing-shard", i => i);
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        var e = Refused(dir);
        Assert.StartsWith(Path.Combine(dir, "model.safetensors.index.json") + ": ", e.Message);
        Assert.Contains("'model-00002-of-00002.safetensors', which is not in the folder", e.Message);
        Assert.Equal("layer.bias", e.Entry);
    }

    [Fact]
    public void A_key_its_shard_does_not_hold_is_refused_naming_it()
    {
        var dir = ShardedWith("absent-key", i => { i["weight_map"]!["ghost.weight"] = "model-00002-of-00002.safetensors"; return i; });
        var e = Refused(dir);
        Assert.Contains("maps 'ghost.weight' to the shard 'model-00002-of-00002.safetensors', which does not hold it", e.Message);
        Assert.Equal("ghost.weight", e.Entry);
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/../../x.safetensors")]
    public void A_shard_outside_the_folder_is_refused_before_anything_is_read(string shard)
    {
        var dir = ShardedWith("traversal", i => { i["weight_map"]!["layer.bias"] = shard; return i; });
        var e = Refused(dir);
        Assert.Contains($"maps 'layer.bias' to the shard '{shard}', which is outside the folder", e.Message);
    }

    [Fact]
    public void An_index_without_a_weight_map_and_a_foreign_format_are_refused()
    {
        var dir = ShardedWith("no-map", _ => new JsonObject { ["metadata"] = new JsonObject() });
        Assert.Contains("has no \"weight_map\"", Refused(dir).Message);

        var single = Folder("tf-format");
        Directory.CreateDirectory(single);
        Safetensors.Save(Path.Combine(single, "model.safetensors"), Model(), RawTensors.Instance, new Dictionary<string, string> { ["format"] = "np" });
        var e = Refused(single);
        Assert.Contains("format 'np'", e.Message);
    }
}
