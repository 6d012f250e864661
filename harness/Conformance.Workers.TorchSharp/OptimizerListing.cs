using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// Renders a TorchSharp optimizer's param_groups the way PyTorch prints
/// <c>optimizer.state_dict()['param_groups']</c>, so the two listings can be read side by side.
/// </summary>
public static class OptimizerListing
{
    public static JsonArray ParamGroups(optim.Optimizer optimizer)
    {
        var groups = new JsonArray();
        int offset = 0;
        var sd = ((OptimizerHelper)optimizer).state_dict();
        var paramCounts = ((OptimizerHelper)optimizer).ParamGroups.Cast<ParamGroup>().Select(g => g.Parameters.Count()).ToList();
        for (int i = 0; i < sd.Options.Count; i++)
        {
            var group = Describe(sd.Options[i]);
            int count = i < paramCounts.Count ? paramCounts[i] : 0;
            group["params"] = new JsonArray(Enumerable.Range(offset, count).Select(p => (JsonNode)p).ToArray());
            offset += count;
            groups.Add(group);
        }
        return groups;
    }

    private static JsonObject Describe(OptimizerOptions options) => options switch
    {
        SGD.Options o => new JsonObject
        {
            ["lr"] = o.LearningRate,
            ["momentum"] = o.momentum,
            ["dampening"] = o.dampening,
            ["weight_decay"] = o.weight_decay,
            ["nesterov"] = o.nesterov,
            ["maximize"] = o.maximize,
        },
        _ => new JsonObject { ["lr"] = options.LearningRate, ["type"] = options.GetType().FullName },
    };

    /// <summary>Python-repr-like rendering: <c>[{'lr': 0.001, 'momentum': 0.9, ...}]</c>.</summary>
    public static string Format(JsonArray groups) =>
        "[" + string.Join(", ", groups.Select(g => "{" + string.Join(", ",
            g!.AsObject().Select(kv => $"'{kv.Key}': {Repr(kv.Value)}")) + "}")) + "]";

    private static string Repr(JsonNode? v) => v switch
    {
        null => "None",
        JsonArray a => "[" + string.Join(", ", a.Select(Repr)) + "]",
        JsonValue x when x.TryGetValue(out bool b) => b ? "True" : "False",
        JsonValue x when x.TryGetValue(out int n) => n.ToString(CultureInfo.InvariantCulture),
        JsonValue x when x.TryGetValue(out double d) => d == Math.Floor(d) && Math.Abs(d) < 1e15
            ? ((long)d).ToString(CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        _ => v.ToJsonString(),
    };
}
