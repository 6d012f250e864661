using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>merge SHARD...</c>: joins the reports of a sharded run (<c>--shard i/n</c> on several machines)
/// into one report of the same schema, so <c>compare</c> and the reports see a single run.
/// </summary>
/// <remarks>
/// Results are concatenated in shard order; a cell in two shards is an error, even when both
/// results agree, because it means the shards overlapped. Runtimes are united by id (one id with
/// two versions, kinds or devices is an error). The environment is the first shard's; differences
/// are noted under <c>merge.notes</c>. <c>seconds</c> is the shards' sum (machine time, not wall
/// time); <c>generated</c> the earliest shard's. Top-level fields this code does not know are dropped.
/// </remarks>
public static class ReportMerge
{
    private static readonly string[] SelectionKeys = ["cells", "case", "route", "runtime", "mode", "shard"];
    private static readonly string[] Outcomes = ["pass", "known_failure", "fail", "skipped", "not_applicable"];

    public static JsonObject Merge(IReadOnlyList<(string Path, JsonNode Report)> shards)
    {
        if (shards.Count == 0) throw new ArgumentException("merge needs at least one report");
        foreach (var (path, report) in shards) ReportFile.Check(report, path);
        var notes = new List<string>();

        var results = new JsonArray();
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, report) in shards)
        foreach (var r in ReportFile.Results(report))
        {
            var cell = ReportFile.Str(r, "cell") ?? throw new InvalidDataException($"{path}: a result has no cell name");
            if (owner.TryGetValue(cell, out var first))
                throw new InvalidDataException(first == path
                    ? $"{path}: cell {cell} appears twice"
                    : $"cell {cell} is in both {first} and {path}: the shards overlap");
            owner[cell] = path;
            results.Add(r.DeepClone());
        }

        var runtimes = new List<JsonNode>();
        var runtimeOwner = new Dictionary<string, (string Path, JsonNode Runtime)>(StringComparer.Ordinal);
        foreach (var (path, report) in shards)
        foreach (var r in ReportFile.Runtimes(report))
        {
            var id = ReportFile.Str(r, "id")!;
            if (!runtimeOwner.TryGetValue(id, out var seen))
            {
                runtimeOwner[id] = (path, r);
                runtimes.Add(r.DeepClone());
                continue;
            }
            foreach (var key in new[] { "kind", "version", "device" })
            {
                var (a, b) = (ReportFile.Str(seen.Runtime, key), ReportFile.Str(r, key));
                if (a is not null && b is not null && a != b)
                    throw new InvalidDataException($"runtime {id} has {key} {a} in {seen.Path} but {b} in {path}: these shards are not one run");
            }
            // A runtime missing on one shard's machine but present on another: keep the one that ran.
            if (ReportFile.Str(seen.Runtime, "status") != "available" && ReportFile.Str(r, "status") == "available")
            {
                runtimes[runtimes.FindIndex(x => ReportFile.Str(x, "id") == id)] = r.DeepClone();
                notes.Add($"runtime {id} is {ReportFile.Str(seen.Runtime, "status") ?? "not available"} in {seen.Path} but available in {path}");
                runtimeOwner[id] = (path, r);
            }
            else if (!JsonNode.DeepEquals(Without(seen.Runtime, "listings"), Without(r, "listings")))
                notes.Add($"runtime {id} differs between {seen.Path} and {path} (status, hello or launch); the first is kept");
        }

        var environment = shards[0].Report["environment"];
        foreach (var (path, report) in shards.Skip(1))
            if (!JsonNode.DeepEquals(environment, report["environment"]))
                notes.Add($"environment of {path} differs from {shards[0].Path}'s, which is kept");

        var ledger = new JsonArray();
        foreach (var (_, report) in shards)
        foreach (var e in (report["ledger_errors"] as JsonArray ?? []).OfType<JsonNode>())
            if (!ledger.Any(x => JsonNode.DeepEquals(x, e))) ledger.Add(e.DeepClone());

        var (selection, complete) = Selection(shards, notes);
        var counts = Outcomes.ToDictionary(o => o, o => results.Count(r => ReportFile.Str(r, "outcome") == o));
        var summary = new JsonObject();
        foreach (var o in Outcomes) summary[o] = counts[o];
        summary["line"] = Runs.RunResult.FormatSummary(o => counts[o.Wire()], ledger.Count, Runs.RunResult.AwaitingNote(results
            .Where(r => ReportFile.Str(r, "outcome") == "skipped")
            .Select(r => (Conformance.Orchestrator.Vocabulary.Cell.Parse(ReportFile.Str(r, "cell")!), ReportFile.Str(r, "message") ?? ""))), seconds: null);

        return new JsonObject
        {
            ["schema"] = 2,
            ["generated"] = Earliest(shards.Select(s => ReportFile.Str(s.Report, "generated"))),
            ["seconds"] = Math.Round(shards.Sum(s => ReportFile.Num(s.Report, "seconds") ?? 0), 1),
            ["complete"] = complete,
            ["selection"] = selection,
            ["environment"] = environment?.DeepClone(),
            ["runtimes"] = new JsonArray(runtimes.ToArray()),
            ["results"] = results,
            ["ledger_errors"] = ledger,
            ["summary"] = summary,
            ["merge"] = new JsonObject
            {
                ["shards"] = new JsonArray(shards.Select(s => (JsonNode)new JsonObject
                {
                    ["path"] = s.Path,
                    ["shard"] = ReportFile.Str(s.Report["selection"], "shard"),
                    ["generated"] = ReportFile.Str(s.Report, "generated"),
                    ["seconds"] = ReportFile.Num(s.Report, "seconds"),
                    ["results"] = ReportFile.Results(s.Report).Count(),
                }).ToArray()),
                ["notes"] = new JsonArray(notes.Select(n => (JsonNode)n).ToArray()),
            },
        };
    }

    /// <summary>
    /// Complete only when the shards are exactly 1/n..n/n of one n and nothing else was filtered.
    /// Otherwise each selection key keeps its value when the shards agree, and lists them when not.
    /// </summary>
    private static (JsonObject Selection, bool Complete) Selection(IReadOnlyList<(string Path, JsonNode Report)> shards, List<string> notes)
    {
        var selection = new JsonObject();
        var filtered = false;
        foreach (var key in SelectionKeys.Where(k => k != "shard"))
        {
            var values = shards.Select(s => s.Report["selection"]?[key]).ToList();
            filtered |= values.Any(v => v is not null);
            selection[key] = values.Skip(1).All(v => JsonNode.DeepEquals(v, values[0]))
                ? values[0]?.DeepClone()
                : new JsonArray(values.Select(v => v?.DeepClone()).ToArray());
        }
        var parsed = shards.Select(s => ParseShard(ReportFile.Str(s.Report["selection"], "shard"))).ToList();
        var n = parsed[0]?.Of;
        var exact = n is not null && parsed.Count == n && parsed.All(p => p?.Of == n)
                    && parsed.Select(p => p!.Value.Index).Order().SequenceEqual(Enumerable.Range(1, n.Value));
        if (!exact)
        {
            var given = shards.Select(s => ReportFile.Str(s.Report["selection"], "shard") ?? "whole run").ToList();
            notes.Add($"shards {string.Join(", ", given)} are not exactly 1/n..n/n of one n: the merged report is not complete");
            selection["shard"] = string.Join(",", given);
        }
        else selection["shard"] = null;
        if (filtered) notes.Add("the shards were filtered (selection other than --shard): the merged report is not complete");
        return (selection, exact && !filtered);
    }

    private static (int Index, int Of)? ParseShard(string? s)
    {
        var parts = s?.Split('/');
        return parts is [var i, var n]
               && int.TryParse(i, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
               && int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var of)
               && index >= 1 && index <= of
            ? (index, of)
            : null;
    }

    private static string? Earliest(IEnumerable<string?> dates)
    {
        var all = dates.OfType<string>().ToList();
        var parsed = all.Select(d => (Text: d, Ok: DateTimeOffset.TryParse(d, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t), At: t))
            .Where(x => x.Ok).OrderBy(x => x.At).ToList();
        return parsed.Count > 0 ? parsed[0].Text : all.FirstOrDefault();
    }

    private static JsonNode Without(JsonNode n, string key)
    {
        var copy = n.DeepClone();
        if (copy is JsonObject o) o.Remove(key);
        return copy;
    }

    public static string Write(JsonObject merged) => merged.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
