using System.Security.Cryptography;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

[Trait("Category", "unit")]
public sealed class JudgementSpecs
{
    private static readonly Tolerance Tol = new(1e-5, 1e-4);

    private static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    private static Observation Obs(IEnumerable<(string Key, byte[] Bytes)> tensors, params double[] outputs) => new(
        tensors.Select(t => new ObservedTensor(t.Key, [t.Bytes.Length / 4], "float32", Sha(t.Bytes))).ToList(),
        new Outputs([outputs.Length], outputs));

    private static byte[] Weights() => Enumerable.Range(0, 64).Select(i => (byte)(i * 37)).ToArray();

    [Fact]
    public void Identical_observations_pass_with_zero_difference()
    {
        var p = Obs([("fc.weight", Weights()), ("fc.bias", [1, 2, 3, 4])], 0.5, -1.25);
        var v = Judge.Compare(p, p, Tol);
        Assert.True(v.Passed, v.Summary);
        Assert.Equal(0, v.Diff!.MaxAbs);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(17, 3)]
    [InlineData(63, 7)]
    public void A_single_flipped_bit_in_one_tensor_fails_and_names_the_key(int byteIndex, int bit)
    {
        var flipped = Weights();
        flipped[byteIndex] ^= (byte)(1 << bit);
        var v = Judge.Compare(Obs([("fc.weight", Weights())], 1.0), Obs([("fc.weight", flipped)], 1.0), Tol);
        Assert.False(v.Passed);
        var p = Assert.Single(v.Problems);
        Assert.Equal(("bytes", "fc.weight"), (p.Code, p.Subject));
        Assert.StartsWith("fc.weight: bytes differ (float32 [16]", p.Message);
    }

    [Fact]
    public void Missing_and_unexpected_keys_are_listed_sorted_in_pytorchs_wording()
    {
        var p = Obs([("b", [1, 0, 0, 0]), ("a", [2, 0, 0, 0]), ("c", [3, 0, 0, 0])], 1.0);
        var c = Obs([("a", [2, 0, 0, 0]), ("z", [3, 0, 0, 0])], 1.0);
        var v = Judge.Compare(p, c, Tol);
        Assert.Contains(v.Problems, p => p is { Code: "missing_keys", Subject: "b,c", Message: "Missing key(s) in state_dict: \"b\", \"c\"" });
        Assert.Contains(v.Problems, p => p is { Code: "unexpected_keys", Subject: "z", Message: "Unexpected key(s) in state_dict: \"z\"" });
    }

    [Fact]
    public void The_same_keys_in_another_order_fail()
    {
        var v = Judge.Compare(Obs([("a", [1, 0, 0, 0]), ("b", [2, 0, 0, 0])], 1.0), Obs([("b", [2, 0, 0, 0]), ("a", [1, 0, 0, 0])], 1.0), Tol);
        var p = Assert.Single(v.Problems);
        Assert.Equal("key order differs at position 0: producer has \"a\", consumer has \"b\"", p.Message);
        Assert.Equal(("key_order", "moved: b"), (p.Code, p.Subject));
    }

    [Fact]
    public void A_shape_or_dtype_change_names_both_sides()
    {
        var p = new Observation([new ObservedTensor("w", [2, 3], "float32", "00")], null);
        Assert.Contains("w: shape [2, 3] became [3, 2]", Judge.Compare(p, p with { Tensors = [new ObservedTensor("w", [3, 2], "float32", "00")] }, Tol).Problems.Select(x => x.Message));
        Assert.Contains("w: dtype float32 became float64", Judge.Compare(p, p with { Tensors = [new ObservedTensor("w", [2, 3], "float64", "00")] }, Tol).Problems.Select(x => x.Message));
    }

    [Theory]
    [InlineData(1.0, 1.0 + 5e-6, true)]    // within atol
    [InlineData(100.0, 100.009, true)]     // within rtol·|p|
    [InlineData(1.0, 1.001, false)]
    [InlineData(double.NaN, double.NaN, true)]
    [InlineData(1.0, double.NaN, false)]
    public void Outputs_are_judged_against_the_cases_tolerance_and_the_largest_differences_recorded(double produced, double consumed, bool passes)
    {
        var v = Judge.Compare(Obs([], 0.0, produced), Obs([], 0.0, consumed), Tol);
        Assert.Equal(passes, v.Passed);
        if (!passes) Assert.Contains("exceeds atol=1e-05, rtol=0.0001", v.Summary);
        if (!double.IsNaN(produced) && !double.IsNaN(consumed)) Assert.Equal(Math.Abs(consumed - produced), v.Diff!.MaxAbs, 12);
    }
}

[Trait("Category", "unit")]
public sealed class VariantJudgementSpecs
{
    private static Observation Obs(params (string Key, string Sha)[] t) =>
        new(t.Select(x => new ObservedTensor(x.Key, [1], "float32", x.Sha)).ToList(), new Outputs([1], [0.0]));

    [Fact]
    public void A_tie_the_producer_had_must_survive_the_load()
    {
        var p = Obs(("emb.weight", "aa"), ("proj.weight", "aa")) with { Aliases = [("emb.weight", "proj.weight")] };
        Assert.True(Judge.Compare(p, p, new Tolerance(0, 0)).Passed);
        var untied = p with { Aliases = [] };
        Assert.Equal("tie lost: \"emb.weight\" and \"proj.weight\" share one tensor in the producer but not after loading",
            Assert.Single(Judge.Compare(p, untied, new Tolerance(0, 0)).Problems).Message);
    }

    [Fact]
    public void A_warm_start_must_report_the_cases_missing_and_unexpected_keys_and_carry_the_shared_values()
    {
        var expected = new PartialLoad(["fc4.weight"], ["fc3.weight"]);
        var producer = Obs(("fc1.weight", "11"), ("fc3.weight", "33"));
        var good = Obs(("fc1.weight", "11"), ("fc4.weight", "44")) with { MissingKeys = ["fc4.weight"], UnexpectedKeys = ["fc3.weight"] };
        Assert.True(Judge.ComparePartial(producer, good, expected).Passed);
        var notLoaded = good with { Tensors = [new ObservedTensor("fc1.weight", [1], "float32", "ffffffffffffffff"), new ObservedTensor("fc4.weight", [1], "float32", "44")] };
        Assert.StartsWith("fc1.weight: shared key not loaded", Assert.Single(Judge.ComparePartial(producer, notLoaded, expected).Problems).Message);
        var silent = good with { MissingKeys = [], UnexpectedKeys = [] };
        Assert.Equal(2, Judge.ComparePartial(producer, silent, expected).Problems.Count);
    }

    [Fact]
    public void A_consumer_that_reports_no_aliases_cannot_pass_a_tie_the_producer_had()
    {
        var p = Obs(("emb.weight", "aa"), ("proj.weight", "aa")) with { Aliases = [("emb.weight", "proj.weight")] };
        var silent = p with { Aliases = null };
        var problem = Assert.Single(Judge.Compare(p, silent, new Tolerance(0, 0)).Problems);
        Assert.Equal("tie_lost", problem.Code);
        Assert.StartsWith("tie unverified: the consumer reported no aliases", problem.Message);
    }

    [Fact]
    public void A_key_the_consumer_lists_twice_fails()
    {
        var p = Obs(("a", "11"), ("b", "22"));
        var twice = p with { Tensors = [.. p.Tensors, new ObservedTensor("a", [1], "float32", "99")] };
        var problem = Assert.Single(Judge.Compare(p, twice, new Tolerance(0, 0)).Problems);
        Assert.Equal(("duplicate_key", "a"), (problem.Code, problem.Subject));
    }

    [Theory]
    [InlineData(0.0, false)]        // identical: the mode switch did nothing
    [InlineData(3.6e-7, false)]     // kernel noise between runs, seen on a traced transformer: still nothing
    [InlineData(0.05, true)]        // dropout or batch statistics at work
    public void The_mode_switch_took_effect_only_when_train_outputs_differ_by_more_than_the_tolerance(double delta, bool tookEffect)
    {
        var c = Obs(("w", "11")) with { Outputs = new Outputs([2], [0.5, 1.0]), TrainOutputs = new Outputs([2], [0.5 + delta, 1.0]) };
        var (problem, measured) = Judge.CompareTrainMode(c, new Tolerance(1e-5, 1e-4));
        Assert.Equal(tookEffect, problem is null);
        Assert.Equal(delta, measured!.Value, 12);
        if (!tookEffect) Assert.Equal("train_mode", problem!.Code);
    }

    [Fact]
    public void The_keys_that_moved_are_named_not_every_key_after_the_first_difference()
    {
        string[] pytorch = ["conv.weight", "bn.weight", "bn.running_mean", "bn.running_var", "fc.weight", "fc.bias", "head.weight"];
        string[] torchsharp = ["conv.weight", "bn.weight", "fc.weight", "fc.bias", "head.weight", "bn.running_mean", "bn.running_var"];
        Assert.Equal(["bn.running_mean", "bn.running_var"], Judge.Moved(pytorch, torchsharp));
        Assert.Empty(Judge.Moved(pytorch, pytorch));
    }

    [Theory]
    [InlineData("size mismatch for fc3.weight: copying a param with shape torch.Size([10, 84]) from checkpoint, the shape in current model is torch.Size([11, 84]).", true)]
    [InlineData("Mismatched tensor shape while loading.", false)]
    [InlineData(null, false)]
    public void A_shape_mismatch_must_be_refused_naming_the_key_and_both_shapes(string? error, bool passes) =>
        Assert.Equal(passes, Judge.CompareMismatchError(error, new ShapeMismatch("fc3.weight", [10, 84], [11, 84])).Passed);

    private static Observation Plain() => new([new ObservedTensor("fc.weight", [1], "float32", new string('0', 64))], new Outputs([1], [1.0]));

    private static Observation Tuned(string[] parameters, string[]? frozen = null, string[]? unchanged = null) =>
        Plain() with { FineTune = new FineTuneObservation(parameters, frozen ?? [], unchanged ?? []) };

    [Fact]
    public void Every_parameter_trainable_and_moved_by_one_step_after_the_load_passes()
    {
        Assert.Empty(Judge.CompareFineTune(Tuned(["fc.weight", "fc.bias"])));
    }

    [Fact]
    public void Parameters_left_frozen_by_the_load_fail_naming_each_of_them()
    {
        var p = Assert.Single(Judge.CompareFineTune(Tuned(["fc.weight", "fc.bias"], frozen: ["fc.weight", "fc.bias"])));
        Assert.Equal(("frozen_after_load", "fc.weight,fc.bias"), (p.Code, p.Subject));
        Assert.Equal("frozen after load: requires_grad is false on 2 of 2 parameter(s): \"fc.weight\", \"fc.bias\"", p.Message);
    }

    [Fact]
    public void A_trainable_parameter_that_one_step_leaves_unchanged_fails_apart_from_a_frozen_one()
    {
        var problems = Judge.CompareFineTune(Tuned(["a", "b", "c"], frozen: ["a"], unchanged: ["c"]));
        Assert.Equal(["a", "c"], problems.Select(p => p.Subject));
        Assert.StartsWith("not trained after load: one SGD step left 1 of 3 parameter(s) unchanged: \"c\"", problems[1].Message);
    }

    [Fact]
    public void A_consumer_that_does_not_report_fine_tuning_cannot_pass_it()
    {
        var p = Assert.Single(Judge.CompareFineTune(Plain()));
        Assert.Equal(("frozen_after_load", ""), (p.Code, p.Subject));
        Assert.StartsWith("fine-tuning after the load unobserved", p.Message);
    }

    private static System.Text.Json.Nodes.JsonObject Scheduled(double[] lrs, string type = "StepLR") => new()
    {
        ["epoch"] = 3, ["loss"] = 0.5,
        ["optimizer"] = new System.Text.Json.Nodes.JsonObject
        {
            ["param_groups"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["lr"] = lrs[0], ["initial_lr"] = 0.05 }),
            ["state"] = new System.Text.Json.Nodes.JsonArray(),
        },
        ["schedule"] = new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = type,
            ["last_lr"] = new System.Text.Json.Nodes.JsonArray(lrs[0]),
            ["lrs"] = new System.Text.Json.Nodes.JsonArray(lrs.Select(v => (System.Text.Json.Nodes.JsonNode)v).ToArray()),
        },
    };

    [Fact]
    public void A_resumed_schedule_equal_within_1e_9_passes_and_an_initial_lr_kept_by_the_scheduler_is_only_noted()
    {
        var consumer = Scheduled([0.025, 0.025 * (1 + 1e-12), 0.0125]);
        consumer["optimizer"]!["param_groups"]![0]!.AsObject().Remove("initial_lr");
        var v = CheckpointJudge.Compare(Scheduled([0.025, 0.025, 0.0125]), consumer);
        Assert.Empty(v.Problems);
        Assert.Contains("kept by the consumer's LR scheduler, not its param group: param_groups.initial_lr", v.Notes);
    }

    [Fact]
    public void A_resumed_schedule_one_step_off_fails_naming_the_step()
    {
        var v = CheckpointJudge.Compare(Scheduled([0.025, 0.025, 0.0125]), Scheduled([0.025, 0.0125, 0.0125]));
        var p = Assert.Single(v.Problems);
        Assert.Equal(("scheduler", "lrs[1]", "lrs[1]: 0.025 became 0.0125"), (p.Code, p.Subject, p.Message));
    }

    [Fact]
    public void A_checkpoint_whose_scheduler_the_consumer_did_not_restore_fails()
    {
        var consumer = Scheduled([0.025, 0.025, 0.0125]);
        consumer.Remove("schedule");
        var p = Assert.Single(CheckpointJudge.Compare(Scheduled([0.025, 0.025, 0.0125]), consumer).Problems);
        Assert.Equal(("scheduler", "schedule"), (p.Code, p.Subject));
    }
}
