using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>What a runtime reported about a state dict it saved or loaded, and its eval outputs.</summary>
public sealed record Observation(IReadOnlyList<ObservedTensor> Tensors, Outputs? Outputs)
{
    /// <summary>Consumer only: outputs of a train-mode forward pass on the same input.</summary>
    public Outputs? TrainOutputs { get; init; }

    /// <summary>Consumer only, strict=False loads: what the load reported, sorted.</summary>
    public IReadOnlyList<string>? MissingKeys { get; init; }

    public IReadOnlyList<string>? UnexpectedKeys { get; init; }

    /// <summary>Pairs of keys whose tensors share memory (tied weights); null when not reported.</summary>
    public IReadOnlyList<(string A, string B)>? Aliases { get; init; }

    /// <summary>Consumer only: fine-tuning after the load (one SGD step); null when not reported.</summary>
    public FineTuneObservation? FineTune { get; init; }

    public static Observation FromJson(JsonNode node)
    {
        var tensors = (node["tensors"]?.AsArray() ?? []).Select(t => new ObservedTensor(
            t!["key"]!.GetValue<string>(),
            t["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToList(),
            t["dtype"]!.GetValue<string>(),
            t["sha256"]!.GetValue<string>())).ToList();
        // A training checkpoint's "outputs" are its parameters after resuming ("resumed").
        return new Observation(tensors, ReadOutputs(node["outputs"] ?? node["resumed"]))
        {
            TrainOutputs = ReadOutputs(node["train_outputs"]),
            MissingKeys = node["missing_keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToList(),
            UnexpectedKeys = node["unexpected_keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToList(),
            Aliases = node["aliases"]?.AsArray().Select(p => (p![0]!.GetValue<string>(), p[1]!.GetValue<string>())).ToList(),
            FineTune = node["fine_tune"] is JsonObject f
                ? new FineTuneObservation(Names(f["parameters"]), Names(f["frozen"]), Names(f["unchanged"]))
                : null,
        };
    }

    private static List<string> Names(JsonNode? n) => n!.AsArray().Select(k => k!.GetValue<string>()).ToList();

    private static Outputs? ReadOutputs(JsonNode? node) => node is JsonObject o
        ? new Outputs(o["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToList(), o["values"]!.AsArray().Select(ToDouble).ToList())
        : null;

    // Python's json writes NaN and Infinity bare; System.Text.Json reads them as strings only when asked.
    private static double ToDouble(JsonNode? v) => v switch
    {
        JsonValue x when x.TryGetValue(out double d) => d,
        JsonValue x when x.TryGetValue(out string? s) => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture),
        _ => double.NaN,
    };
}
