using System.Globalization;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>
/// Judges a training checkpoint as the consumer read it against what the producer saved: epoch and
/// loss exactly; the optimizer's param_groups field by field (PyTorch's kernel-selection flags,
/// which TorchSharp does not represent, are noted, not failed); every per-parameter state entry
/// (tensors by SHA-256; scalars such as step by value, a tensor step and an integer step being the
/// same step). The model tensors and the resumed parameters are judged by <see cref="Judge"/>.
/// </summary>
public static class CheckpointJudge
{
    public static CheckpointVerdict Compare(JsonNode producer, JsonNode consumer)
    {
        var problems = new List<Problem>();
        var notes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var field in new[] { "epoch", "loss" })
            if (!SameValue(producer[field], consumer[field]))
                problems.Add(new Problem(field == "epoch" ? P.Epoch : P.Loss, field, $"{field}: {Show(producer[field])} became {Show(consumer[field])}"));

        // One optimizer ("optimizer"), or several by name ("optimizers": GAN-style files).
        var pairs = producer["optimizers"] is JsonObject named
            ? named.Select(kv => (Label: kv.Key + ".", P: kv.Value, C: consumer["optimizers"]?[kv.Key]))
            : [(Label: "", P: producer["optimizer"], C: consumer["optimizer"])];
        foreach (var (label, p, c) in pairs)
        {
            if (c is null) { problems.Add(new Problem(P.OptimizerState, label + "optimizer", $"{label}optimizer state missing on the consumer")); continue; }
            CompareOptimizer(label, p!, c, problems, notes);
        }
        if (producer["schedule"] is JsonObject schedule) CompareSchedule(schedule, consumer["schedule"], problems);
        return new CheckpointVerdict(problems, notes.ToList());
    }

    /// <summary>
    /// An LR scheduler restored from the checkpoint: its type, get_last_lr() once loaded, and the
    /// learning rate and momentum each resumed step ran with, against the producer's continuation.
    /// Both sides compute them in float64 (cosines from each runtime's libm): equal within 1e-9
    /// relative; a schedule one step off differs by far more.
    /// </summary>
    private static void CompareSchedule(JsonObject producer, JsonNode? consumer, List<Problem> problems)
    {
        if (consumer is not JsonObject c)
        {
            problems.Add(new Problem(P.Scheduler, "schedule", "schedule missing on the consumer: the LR scheduler was not restored"));
            return;
        }
        if (!SameValue(producer["type"], c["type"]))
            problems.Add(new Problem(P.Scheduler, "type", $"scheduler type: {Show(producer["type"])} became {Show(c["type"])}"));
        foreach (var field in new[] { "last_lr", "lrs", "momenta" })
        {
            if (producer[field] is not JsonArray p) continue;
            if (c[field] is not JsonArray theirs || theirs.Count != p.Count)
            {
                problems.Add(new Problem(P.Scheduler, field, $"{field}: {Show(p)} became {Show(c[field])}"));
                continue;
            }
            for (int i = 0; i < p.Count; i++)
                if (!CloseAsScheduled(p[i], theirs[i]))
                    problems.Add(new Problem(P.Scheduler, $"{field}[{i}]", $"{field}[{i}]: {Show(p[i])} became {Show(theirs[i])}"));
        }
    }

    private static bool CloseAsScheduled(JsonNode? a, JsonNode? b) =>
        SameValue(a, b) || (a is not null && b is not null && Number(a) is { } x && Number(b) is { } y && Math.Abs(x - y) <= 1e-9 * Math.Max(Math.Abs(x), Math.Abs(y)));

    private static void CompareOptimizer(string label, JsonNode producer, JsonNode consumer, List<Problem> problems, SortedSet<string> notes)
    {
        var pGroups = producer["param_groups"]?.AsArray() ?? [];
        var cGroups = consumer["param_groups"]?.AsArray() ?? [];
        if (pGroups.Count != cGroups.Count) problems.Add(new Problem(P.ParamGroups, $"{label}param_groups", $"{label}param_groups: {pGroups.Count} group(s) became {cGroups.Count}"));
        for (int g = 0; g < Math.Min(pGroups.Count, cGroups.Count); g++)
        {
            var pg = pGroups[g]!.AsObject();
            var cg = cGroups[g]!.AsObject();
            foreach (var (key, value) in pg)
            {
                if (!cg.TryGetPropertyValue(key, out var theirs))
                {
                    if (Catalogue.ImplementationFlags.Contains(key)) notes.Add($"not represented by the consumer: {label}param_groups.{key}");
                    else if (Catalogue.SchedulerGroupKeys.Contains(key)) notes.Add($"kept by the consumer's LR scheduler, not its param group: {label}param_groups.{key}");
                    else problems.Add(new Problem(P.ParamGroups, $"{label}param_groups[{g}].{key}", $"{label}param_groups[{g}].{key} = {Show(value)} was dropped"));
                    continue;
                }
                if (!SameValue(value, theirs)) problems.Add(new Problem(P.ParamGroups, $"{label}param_groups[{g}].{key}", $"{label}param_groups[{g}].{key}: {Show(value)} became {Show(theirs)}"));
            }
        }

        var pState = (producer["state"]?.AsArray() ?? []).ToDictionary(s => s!["param"]!.GetValue<int>(), s => s!["entries"]!.AsArray());
        var cState = (consumer["state"]?.AsArray() ?? []).ToDictionary(s => s!["param"]!.GetValue<int>(), s => s!["entries"]!.AsArray());
        foreach (var (param, entries) in pState)
        {
            if (!cState.TryGetValue(param, out var theirs)) { problems.Add(State($"{label}state[{param}]", "missing on the consumer")); continue; }
            var byKey = theirs.ToDictionary(e => e!["key"]!.GetValue<string>());
            foreach (var e in entries)
            {
                var key = e!["key"]!.GetValue<string>();
                if (!byKey.Remove(key, out var c)) { problems.Add(State($"{label}state[{param}].{key}", "missing on the consumer")); continue; }
                if (e["sha256"] is not null)
                {
                    if (e["sha256"]!.GetValue<string>() != c!["sha256"]?.GetValue<string>() || !SameValue(e["shape"], c["shape"]) || !SameValue(e["dtype"], c["dtype"]))
                        problems.Add(State($"{label}state[{param}].{key}", $"{e["dtype"]} {e["shape"]?.ToJsonString()} sha256 {Short(e["sha256"])} became {c!["dtype"]} {c["shape"]?.ToJsonString()} sha256 {Short(c["sha256"])}"));
                }
                else
                {
                    var (pr, cr) = (e["representation"]?.GetValue<string>(), c!["representation"]?.GetValue<string>());
                    if (pr != cr) notes.Add($"{key} is {pr} on the producer, {cr} on the consumer");
                    if (SameValue(e["value"], c["value"])) continue;
                    // A float32 side (PyTorch keeps scalar state as float32 tensors) rounds a double.
                    if (CloseAsFloat32(e["value"], c["value"]) && (pr ?? "").Contains("float32") | (cr ?? "").Contains("float32"))
                        notes.Add($"{key} rounded to float32 ({Show(e["value"])} became {Show(c["value"])})");
                    else problems.Add(State($"{label}state[{param}].{key}", $"{Show(e["value"])} became {Show(c["value"])}"));
                }
            }
            foreach (var extra in byKey.Keys) problems.Add(State($"{label}state[{param}].{extra}", "present on the consumer only"));
        }
        foreach (var extra in cState.Keys.Except(pState.Keys)) problems.Add(State($"{label}state[{extra}]", "present on the consumer only"));
    }

    private static Problem State(string subject, string what) => new(P.OptimizerState, subject, $"{subject}: {what}");

    private static bool CloseAsFloat32(JsonNode? a, JsonNode? b) =>
        a is not null && b is not null && Number(a) is { } x && Number(b) is { } y && Math.Abs(x - y) <= 1e-7 * Math.Max(Math.Abs(x), Math.Abs(y));

    private static string Short(JsonNode? sha) => sha?.GetValue<string>() is { Length: > 12 } s ? s[..12] + "…" : sha?.ToJsonString() ?? "none";

    private static string Show(JsonNode? v) => v?.ToJsonString() ?? "None";

    /// <summary>Equal as values: numbers numerically (3 == 3.0), lists element-wise, null only with null.</summary>
    public static bool SameValue(JsonNode? a, JsonNode? b)
    {
        if (a is null || b is null) return a is null && b is null;
        if (a is JsonArray xa && b is JsonArray xb) return xa.Count == xb.Count && xa.Zip(xb).All(p => SameValue(p.First, p.Second));
        if (Number(a) is { } na && Number(b) is { } nb) return na.Equals(nb);
        return a.ToJsonString() == b.ToJsonString();
    }

    private static double? Number(JsonNode n) =>
        n is JsonValue v && v.TryGetValue(out double d) ? d
        : n is JsonValue s && s.TryGetValue(out string? str) && double.TryParse(str, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) ? p
        : null;
}
