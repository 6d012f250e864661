using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// A compatibility.json (schema 2) or a compact baseline as a JSON tree: loading with errors that name
/// the file, and the fields every reader of reports takes from it (compare, merge, baseline, history).
/// </summary>
public static class ReportFile
{
    /// <summary>Reads a report and checks it is schema 2 with results; every error names the path.</summary>
    public static JsonNode Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such report", path);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not JSON: {e.Message}", e); }
        return Baseline.Expand(Check(node, path), path);
    }

    /// <summary>Throws, naming the report, unless it is a schema-2 object with a results array.</summary>
    public static JsonNode Check(JsonNode? report, string name)
    {
        if (report is not JsonObject o) throw new InvalidDataException($"{name}: not a compatibility report (expected a JSON object)");
        var schema = o["schema"];
        if (AsNumber(schema) != 2)
            throw new InvalidDataException($"{name}: report schema is {schema?.ToJsonString() ?? "missing"}, expected 2; rerun the suite to write a current report");
        if (o["results"] is not JsonArray) throw new InvalidDataException($"{name}: report has no results array");
        return report;
    }

    /// <summary>A report's outcome counts, as it states them (or counted from its results when it has no summary).</summary>
    public static ReportSummary Summary(JsonNode report)
    {
        int Count(string outcome) => Results(report).Count(r => Str(r, "outcome") == outcome);
        var s = report["summary"];
        int Get(string key) => Num(s, key) is { } d ? (int)d : Count(key);
        return new ReportSummary(Get("pass"), Get("known_failure"), Get("fail"), Get("skipped"), Get("not_applicable"), Str(s, "line"));
    }

    public static IEnumerable<JsonNode> Results(JsonNode report) => (report["results"] as JsonArray ?? []).OfType<JsonNode>();

    public static IEnumerable<JsonNode> Runtimes(JsonNode report) =>
        (report["runtimes"] as JsonArray ?? []).OfType<JsonNode>().Where(r => Str(r, "id") is not null);

    public static HashSet<string> RuntimeIds(JsonNode report) => Runtimes(report).Select(r => Str(r, "id")!).ToHashSet(StringComparer.Ordinal);

    public static string? Str(JsonNode? n, string key) =>
        n is JsonObject o && o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static double? Num(JsonNode? n, string key) => n is JsonObject o ? AsNumber(o[key]) : null;

    // Through the text, so numbers built in code (JsonValue<int>) and parsed ones (JsonElement) read alike.
    public static double? AsNumber(JsonNode? n) =>
        n is JsonValue v && v.GetValueKind() == JsonValueKind.Number
        && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
}
