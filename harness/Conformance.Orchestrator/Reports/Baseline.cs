using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// The committed baseline (<c>reports/baseline.json</c>): every cell's outcome, problem codes and
/// subjects, ledger id and largest output difference from one complete run of main, and nothing
/// observed (no messages, hashes or listings), so it stays small enough to commit and reads as a diff.
/// </summary>
/// <remarks>
/// One row per line, sorted by cell name: <c>[cell, outcome, max_abs_diff, ledger id, [[code, subject]…]]</c>, its
/// trailing empty columns (null, null, []) left out: <c>[cell, "skipped"]</c>, <c>[cell, "pass", 0]</c>.
/// <see cref="Expand"/> turns it back into the report shape that <c>compare</c> and <c>history</c> read, so a
/// baseline is accepted wherever a compatibility.json is compared.
/// </remarks>
public static class Baseline
{
    public const string Kind = "baseline";

    /// <summary>GitHub refuses larger files in a diff view; the issue asks for less.</summary>
    public const int MaxBytes = 2 * 1024 * 1024;

    private static readonly string[] Columns = ["cell", "outcome", "max_abs_diff", "ledger", "problems"];

    public static bool Is(JsonNode? report) => report is JsonObject o && ReportFile.Str(o, "kind") == Kind;

    /// <summary>The compact form of a complete report; <paramref name="commit"/> is the commit the run was made from.</summary>
    public static JsonObject From(JsonNode report, string? commit, string source)
    {
        ReportFile.Check(report, source);
        if (Is(report)) throw new InvalidDataException($"{source} is already a baseline");
        if (report["complete"] is JsonValue c && c.TryGetValue<bool>(out var complete) && !complete)
            throw new InvalidDataException($"{source} is not a complete run (filtered, or one shard): a baseline holds every cell; merge the shards or run the whole matrix");

        var rows = new JsonArray();
        var tolerances = new JsonObject();
        foreach (var r in ReportFile.Results(report).OrderBy(r => ReportFile.Str(r, "cell"), StringComparer.Ordinal))
        {
            var problems = new JsonArray();
            foreach (var p in (r["problems"] as JsonArray ?? []).OfType<JsonObject>())
                problems.Add(new JsonArray(ReportFile.Str(p, "code"), ReportFile.Str(p, "subject")));
            var row = new JsonArray(
                ReportFile.Str(r, "cell"),
                ReportFile.Str(r, "outcome"),
                ReportFile.Num(r, "max_abs_diff") is { } d ? JsonValue.Create(d) : null,
                ReportFile.Str(r["known_failure"], "id"),
                problems);
            // Trailing empty columns are left out (a skipped cell is [cell, "skipped"]): 17,000 rows stay under MaxBytes.
            while (row.Count > 2 && (row[^1] is null || row[^1] is JsonArray { Count: 0 })) row.RemoveAt(row.Count - 1);
            rows.Add(row);
            if (ReportFile.Str(r, "case") is { } @case && r["tolerance"] is JsonObject t && !tolerances.ContainsKey(@case))
                tolerances[@case] = t.DeepClone();
        }
        var runtimes = new JsonArray();
        foreach (var rt in ReportFile.Runtimes(report))
        {
            var kept = new JsonObject();
            foreach (var k in new[] { "id", "kind", "version", "device", "status", "hello" })
                if (rt[k] is { } v) kept[k] = v.DeepClone();
            if (kept["hello"] is JsonObject hello) hello.Remove("pid");
            runtimes.Add(kept);
        }
        return new JsonObject
        {
            ["schema"] = 2,
            ["kind"] = Kind,
            ["commit"] = commit,
            ["generated"] = report["generated"]?.DeepClone(),
            ["complete"] = true,
            ["selection"] = report["selection"]?.DeepClone(),
            ["environment"] = report["environment"]?.DeepClone(),
            ["runtimes"] = runtimes,
            ["tolerances"] = tolerances,
            ["summary"] = report["summary"]?.DeepClone(),
            ["columns"] = new JsonArray(Columns.Select(c => (JsonNode?)c).ToArray()),
            ["results"] = rows,
        };
    }

    /// <summary>The file's text: the header indented, then one result row per line (a reviewable diff).</summary>
    public static string Write(JsonObject baseline)
    {
        var header = new JsonObject();
        foreach (var (k, v) in baseline) if (k != "results") header[k] = v?.DeepClone();
        var sb = new StringBuilder();
        var head = header.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        sb.Append(head, 0, head.LastIndexOf('}')).Append(",\n  \"results\": [\n");
        var rows = (JsonArray)baseline["results"]!;
        for (int i = 0; i < rows.Count; i++)
            sb.Append("    ").Append(rows[i]!.ToJsonString(Compact)).Append(i + 1 < rows.Count ? ",\n" : "\n");
        return sb.Append("  ]\n}\n").ToString();
    }

    private static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A baseline as a schema-2 report: result objects with the fields compare and history read.</summary>
    public static JsonNode Expand(JsonNode baseline, string source)
    {
        if (!Is(baseline)) return baseline;
        var columns = (baseline["columns"] as JsonArray ?? []).Select(c => c?.GetValue<string>()).ToArray();
        if (!columns.SequenceEqual(Columns))
            throw new InvalidDataException($"{source}: baseline columns are [{string.Join(", ", columns)}], expected [{string.Join(", ", Columns)}]; regenerate it with make baseline");
        var results = new JsonArray();
        int line = 0;
        foreach (var row in baseline["results"] as JsonArray ?? [])
        {
            line++;
            if (row is not JsonArray a || a.Count < 2 || a.Count > Columns.Length || a[0] is not JsonValue v || !v.TryGetValue<string>(out var cell))
                throw new InvalidDataException($"{source}: result row {line} is not [cell, outcome, max_abs_diff, ledger, problems] (trailing empty columns may be left out)");
            JsonNode? At(int i) => i < a.Count ? a[i] : null;
            var @case = cell.Split('/')[0];
            var problems = new JsonArray();
            foreach (var p in At(4) as JsonArray ?? [])
                if (p is JsonArray pa && pa.Count == 2)
                    problems.Add(new JsonObject { ["code"] = pa[0]?.DeepClone(), ["subject"] = pa[1]?.DeepClone() });
            results.Add(new JsonObject
            {
                ["cell"] = cell,
                ["case"] = @case,
                ["outcome"] = a[1]?.DeepClone(),
                ["message"] = string.Join("; ", problems.Select(p => ReportFile.Str(p, "code"))),
                ["problems"] = problems,
                ["max_abs_diff"] = At(2)?.DeepClone(),
                ["tolerance"] = baseline["tolerances"]?[@case]?.DeepClone(),
                ["known_failure"] = At(3) is null ? null : new JsonObject { ["id"] = At(3)!.DeepClone() },
            });
        }
        var report = new JsonObject();
        foreach (var (k, v) in baseline.AsObject()) if (k is not ("results" or "columns" or "tolerances")) report[k] = v?.DeepClone();
        report["results"] = results;
        return report;
    }

    // ---- The README's overview -------------------------------------------------------------

    public const string OverviewBegin = "<!-- overview: written by `make baseline` from reports/baseline.json; do not edit -->";
    public const string OverviewEnd = "<!-- overview end -->";

    /// <summary>Per route and TorchSharp side (PyBridge next to TorchCheckpoints), the cells of each direction: the table at the README's top (<see cref="LibraryTable"/>).</summary>
    public static string Overview(JsonNode report)
    {
        var cells = ReportFile.Results(report).Select(r => (ReportFile.Str(r, "cell") ?? "", ReportFile.Str(r, "outcome") ?? "?"));
        var s = ReportFile.Summary(report);
        var sb = new StringBuilder();
        sb.AppendLine(OverviewBegin).AppendLine();
        sb.AppendLine($"The committed baseline (`reports/baseline.json`, commit `{Short(ReportFile.Str(report, "commit"))}`, {When(ReportFile.Str(report, "generated"))}): "
                      + $"**{s.Pass:N0} pass, {s.KnownFailure:N0} known failures, {s.Fail:N0} unexpected**, {s.Skipped:N0} skipped, {s.NotApplicable:N0} not applicable. "
                      + "Each cell counts the cells of that route, TorchSharp side and direction that pass / are known failures (declared in `known-failures.json`, with the reason) / fail unexpectedly; skipped and not-applicable cells are left out. "
                      + "A state-dict route's TorchSharp side runs once per .NET library: PyBridge (`torchsharp-0.107+pybridge`) and this project's TorchCheckpoints (`torchsharp-0.107+torchcheckpoints`); TorchSharp → TorchSharp counts what a library reads, from either library's files.");
        sb.AppendLine();
        sb.Append(LibraryTable.Markdown(cells));
        sb.AppendLine().AppendLine(OverviewEnd);
        return sb.ToString();
    }

    private static string When(string? generated) =>
        DateTimeOffset.TryParse(generated, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t)
            ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture) : "undated";

    private static string Short(string? commit) => commit is null ? "unknown" : commit.Length > 12 ? commit[..12] : commit;

    /// <summary>The README with its overview section replaced (or, when it has none, inserted after the first paragraph).</summary>
    public static string WithOverview(string readme, string overview)
    {
        int b = readme.IndexOf(OverviewBegin, StringComparison.Ordinal), e = readme.IndexOf(OverviewEnd, StringComparison.Ordinal);
        if (b >= 0 && e > b) return readme[..b] + overview.TrimEnd('\n') + readme[(e + OverviewEnd.Length)..];
        var firstBreak = readme.IndexOf("\n\n", readme.IndexOf("\n\n", StringComparison.Ordinal) + 2, StringComparison.Ordinal);
        if (firstBreak < 0) return readme.TrimEnd('\n') + "\n\n" + overview;
        return readme[..(firstBreak + 2)] + overview + "\n" + readme[(firstBreak + 2)..];
    }

    /// <summary>The overview section as the README holds it now, or null.</summary>
    public static string? OverviewIn(string readme)
    {
        int b = readme.IndexOf(OverviewBegin, StringComparison.Ordinal), e = readme.IndexOf(OverviewEnd, StringComparison.Ordinal);
        return b >= 0 && e > b ? readme[b..(e + OverviewEnd.Length)] + "\n" : null;
    }
}
