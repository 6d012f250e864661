using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;

namespace Conformance.Orchestrator.Check;

/// <summary>
/// A PyTorch <c>optimizer.state_dict()</c> saved alone (<c>{state, param_groups}</c>): which torch.optim class
/// wrote it, from the catalogue's optimizers (the one table of each class's param_group keys), so that the
/// TorchSharp worker can build that optimizer and try PyBridge's <c>optimizer.load_py</c> and TorchCheckpoints'
/// <c>optimizer.load_pytorch</c> on the file.
/// </summary>
public static class OptimizerFiles
{
    /// <summary>What the names of the TorchSharp worker's optimizer readers hold: "PyBridge optimizer.load_py (Adam)", "TorchCheckpoints optimizer.load_pytorch (Adam)".</summary>
    public const string ReaderMark = "optimizer.load_";

    /// <summary>True when the file's top level is exactly PyTorch's optimizer state dict.</summary>
    public static bool IsOptimizerStateDict(JsonObject? inventory)
    {
        var top = inventory?["top_level"]?["keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToHashSet() ?? [];
        return top.SetEquals(["state", "param_groups"]);
    }

    /// <summary>
    /// The torch.optim class whose param_group keys (the catalogue's) are all in the file's first param group, the
    /// one with most keys; Adam and AdamW share their keys and their state, and the first in the catalogue wins.
    /// Null when none fits.
    /// </summary>
    public static string? ClassOf(JsonObject? inventory)
    {
        if (!IsOptimizerStateDict(inventory)) return null;
        const string prefix = "param_groups/0/";
        var keys = (inventory!["others"]?.AsArray() ?? []).OfType<JsonObject>()
            .Select(o => o["key"]!.GetValue<string>()).Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('/')[0]).ToHashSet();
        return Catalogue.OptimizerParamGroupKeys
            .Where(o => o.Keys.All(keys.Contains))
            .OrderByDescending(o => o.Keys.Count)
            .Select(o => o.Class)
            .FirstOrDefault();
    }
}
