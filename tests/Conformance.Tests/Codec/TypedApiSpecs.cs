using Conformance.Orchestrator.Runtimes;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// The codec's typed accessors, in-process with <see cref="RawTensors"/> (no libtorch): a checkpoint's
/// parts reached without a cast, and a value of the wrong kind refused naming the file, the key and what
/// it is. The TorchSharp-backed API (StateDict, load_pytorch) runs in PackageSpecs' consumer project.
/// </summary>
[Trait("Category", "unit")]
public sealed class TypedApiSpecs
{
    private static readonly string Checkpoint = Path.Combine(RepoLayout.Find().FixturesDir, "pytorch-2.6", "ckpt_adam.checkpoint.pt");

    private static PyDict Load() => TorchCheckpoint.Load(Checkpoint, RawTensors.Instance).AsDict();

    [Fact]
    public void Load_gives_a_typed_tree_walked_with_indexers_and_read_with_typed_accessors()
    {
        var c = TorchCheckpoint.Load(Checkpoint, RawTensors.Instance);
        Assert.Equal(CheckpointValueKind.Dict, c.Kind);
        Assert.Equal(["epoch", "model_state_dict", "optimizer_state_dict", "loss"], c.Keys);
        Assert.Equal(3, c["epoch"].AsInt());
        Assert.True(c["loss"].AsFloat() > 0);
        Assert.Equal(3.0, c["epoch"].AsFloat()); // an int widens to a float, as in Python
        var exp = c["optimizer_state_dict"]["state"][0]["exp_avg"];
        Assert.Equal(CheckpointValueKind.Tensor, exp.Kind);
        Assert.Equal([16L, 8L], exp.As<RawTensor>().Shape);
        Assert.Equal("$['optimizer_state_dict']['state'][0]['exp_avg']", exp.Where);
        var group = c["optimizer_state_dict"]["param_groups"][0];
        Assert.Equal(CheckpointValueKind.Tuple, group["betas"].Kind);
        Assert.Equal([0.9, 0.99], group["betas"].Select(b => b.AsFloat()));
        Assert.Equal(4, group["params"].Count);
        Assert.Equal([0L, 1, 2, 3], group["params"].Select(p => p.AsInt()));
        Assert.False(group["amsgrad"].AsBool());
        Assert.True(group.ContainsKey("lr"));
        Assert.Equal(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], c["model_state_dict"].Entries.Select(e => (string)e.Key));
    }

    [Fact]
    public void The_typed_tree_refuses_a_value_of_another_kind_naming_the_file_and_where_it_is()
    {
        var c = TorchCheckpoint.Load(Checkpoint, RawTensors.Instance);
        var e = Assert.Throws<CheckpointFormatException>(() => c["epoch"].AsTensor());
        Assert.Contains(Checkpoint, e.Message);
        Assert.Contains("$['epoch'] is an int, not a tensor", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c["optimizer_state_dict"]["param_groups"]["lr"]);
        Assert.Contains("$['optimizer_state_dict']['param_groups'] is a list, not a dict", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c["optimizer_state_dict"]["param_groups"][1]);
        Assert.Contains("$['optimizer_state_dict']['param_groups'][1]: out of range; $['optimizer_state_dict']['param_groups'] holds 1 item(s)", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c["state_dict"]);
        Assert.Contains("$['state_dict']: no such key; $'s keys are: 'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c["optimizer_state_dict"]["state"][7]);
        Assert.Contains("$['optimizer_state_dict']['state'][7]: no such key", e.Message);
        // A dict holding more than tensors is not a state dict: the key is named.
        e = Assert.Throws<CheckpointFormatException>(() => c["optimizer_state_dict"].AsStateDict());
        Assert.Contains("$['optimizer_state_dict']", e.Message);
    }

    [Fact]
    public void A_checkpoints_parts_are_reached_without_a_cast()
    {
        var c = Load();
        Assert.Equal(3, c.Int("epoch"));
        Assert.True(c.Float("loss") > 0);
        var model = c.Dict("model_state_dict");
        Assert.True(model.Ordered);
        Assert.Equal([16L, 8L], model.Get<RawTensor>("fc1.weight").Shape);
        var groups = c.Dict("optimizer_state_dict").DictList("param_groups");
        Assert.Equal(0.001, Assert.Single(groups).Float("lr"), 12);
        Assert.Equal(2, groups[0].Tuple("betas").Count);
    }

    [Fact]
    public void A_value_of_another_kind_is_refused_naming_the_file_the_key_and_what_it_is()
    {
        var c = Load();
        var e = Assert.Throws<CheckpointFormatException>(() => c.Dict("epoch"));
        Assert.Contains(Checkpoint, e.Message);
        Assert.Contains("'epoch' is an int, not a dict", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c.Int("model_state_dict"));
        Assert.Contains("'model_state_dict' is an OrderedDict, not an int", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => c.Dict("optimizer_state_dict").Dict("param_groups"));
        Assert.Contains("'param_groups' is a list, not a dict", e.Message);
        // A missing key lists the keys there are.
        e = Assert.Throws<CheckpointFormatException>(() => c.Dict("state_dict"));
        Assert.Contains("key 'state_dict' is not in the dict; its keys are: 'epoch'", e.Message);
    }
}
