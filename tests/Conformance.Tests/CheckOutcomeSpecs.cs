using System.Text.Json.Nodes;
using Conformance.Orchestrator.Check;

namespace Conformance.Tests;

/// <summary>The exit code of `conformance check` from its files' outcomes, and the optimizer class read off a PyTorch optimizer state dict.</summary>
[Trait("Category", "unit")]
public sealed class CheckOutcomeSpecs
{
    [Theory]
    [InlineData(new CheckOutcome[0], 0)]
    [InlineData(new[] { CheckOutcome.Loads, CheckOutcome.Loads }, 0)]
    [InlineData(new[] { CheckOutcome.Loads, CheckOutcome.NotAModel }, 3)]
    [InlineData(new[] { CheckOutcome.NotAModel, CheckOutcome.DoesNotLoad }, 1)]
    [InlineData(new[] { CheckOutcome.DoesNotLoad, CheckOutcome.IoError, CheckOutcome.Loads }, 4)]
    public void The_exit_code_is_the_gravest_outcome_an_unreadable_file_then_a_model_that_does_not_load_then_a_file_that_is_no_model(CheckOutcome[] outcomes, int code) =>
        Assert.Equal(code, CheckOutcomes.ExitCode(outcomes));

    [Fact]
    public void A_verdict_without_an_outcome_takes_it_from_whether_it_loads()
    {
        Assert.Equal(CheckOutcome.Loads, new Verdict(true, "✓", "").Outcome);
        Assert.Equal(CheckOutcome.DoesNotLoad, new Verdict(false, "✗", "").Outcome);
        Assert.Equal(CheckOutcome.NotAModel, new Verdict(false, "⚠", "") { Outcome = CheckOutcome.NotAModel }.Outcome);
    }

    private static JsonObject Inventory(params string[] groupKeys) => new()
    {
        ["top_level"] = new JsonObject { ["keys"] = new JsonArray("state", "param_groups") },
        ["others"] = new JsonArray(groupKeys.Select(k => (JsonNode)new JsonObject { ["key"] = "param_groups/0/" + k, ["value"] = "0" }).ToArray()),
    };

    [Fact]
    public void The_optimizer_class_is_the_catalogue_class_whose_param_group_keys_the_file_has_most_of()
    {
        Assert.Equal("Adam", OptimizerFiles.ClassOf(Inventory("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "params")));
        Assert.Equal("SGD", OptimizerFiles.ClassOf(Inventory("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "params")));
        Assert.Equal("RMSprop", OptimizerFiles.ClassOf(Inventory("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize", "params")));
        Assert.Equal("NAdam", OptimizerFiles.ClassOf(Inventory("lr", "betas", "eps", "weight_decay", "momentum_decay", "params")));
        Assert.Null(OptimizerFiles.ClassOf(Inventory("lr", "params")));
        var checkpoint = Inventory("lr");
        checkpoint["top_level"]!["keys"] = new JsonArray("epoch", "model_state_dict", "optimizer_state_dict");
        Assert.Null(OptimizerFiles.ClassOf(checkpoint));
    }
}
