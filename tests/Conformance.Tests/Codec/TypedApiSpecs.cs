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

    private static PyDict Load() => (PyDict)TorchCheckpoint.Load(Checkpoint, RawTensors.Instance)!;

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
