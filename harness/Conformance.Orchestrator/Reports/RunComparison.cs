using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>compare OLD NEW [--map old-id=new-id]...</c>: the upgrade gate. Matches the cells of two
/// compatibility.json reports (schema 2) by name, after renaming the old report's runtime ids
/// through the map, and lists what changed.
/// </summary>
/// <remarks>
/// A regression is a cell that leaves <c>pass</c> (for anything: fail, known_failure, skipped,
/// not_applicable, or vanishing from the new report), or that arrives at <c>fail</c> from anything
/// else. A gate must not go green because cells stopped running, nor because a failure was newly
/// declared. A fix is fail or known_failure → pass; every other change is listed apart.
/// </remarks>
public sealed record RunComparison(
    string OldName,
    string NewName,
    IReadOnlyDictionary<string, string> Map,
    int Compared,
    IReadOnlyList<OutcomeChange> Regressions,
    IReadOnlyList<OutcomeChange> Fixes,
    IReadOnlyList<OutcomeChange> OtherChanges,
    IReadOnlyList<OutcomeChange> NewCells,
    IReadOnlyList<OutcomeChange> VanishedCells,
    IReadOnlyList<ToleranceDrift> Drifts,
    IReadOnlyList<EnvironmentChange> Environment,
    IReadOnlyList<string> Warnings,
    ReportSummary OldSummary,
    ReportSummary NewSummary)
{
    /// <summary>Tenfold growth of max_abs_diff is drift.</summary>
    public const double DriftFactor = 10;

    /// <summary>
    /// Differences below this fraction of the case's atol (or below 1e-12 when the cell states no
    /// tolerance) are treated as this value, so 0 → 3e-8 between two libtorch builds is not "infinitely" worse.
    /// </summary>
    public const double DriftFloorOfAtol = 1e-3;

    public const double DriftFloorAbsolute = 1e-12;

    /// <summary>Rows shown per table; the rest are counted.</summary>
    public const int TableCap = 50;

    public bool HasRegressions => Regressions.Count > 0;

    /// <summary>Any outcome change, new or vanished cell: what <c>compare --fail-on-change</c> (the determinism gate) refuses.</summary>
    public bool HasChanges => Regressions.Count + Fixes.Count + OtherChanges.Count + NewCells.Count + VanishedCells.Count > 0;

    /// <summary>Parses <c>--map old=new</c> arguments; an empty side or an id mapped twice is refused.</summary>
    public static IReadOnlyDictionary<string, string> ParseMap(IEnumerable<string> pairs)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pairs)
        {
            var i = p.IndexOf('=');
            if (i <= 0 || i == p.Length - 1) throw new ArgumentException($"--map {p}: expected OLD-ID=NEW-ID, e.g. torchsharp-0.107=torchsharp-0.108");
            if (!map.TryAdd(p[..i].Trim(), p[(i + 1)..].Trim())) throw new ArgumentException($"--map {p}: {p[..i]} is mapped twice");
        }
        return map;
    }

    /// <summary>Compares two loaded reports. The map renames runtime ids of the old report to those of the new.</summary>
    /// <remarks>
    /// Renaming applies to exact ids only: a golden producer <c>pytorch-1.13@golden</c> is the same
    /// files in both runs, so mapping <c>pytorch-1.13</c> leaves it alone (map it by its full id if you must).
    /// </remarks>
    public static RunComparison Compare(JsonNode oldReport, JsonNode newReport, IReadOnlyDictionary<string, string> map,
                                        string oldName = "old report", string newName = "new report")
    {
        ReportFile.Check(oldReport, oldName);
        ReportFile.Check(newReport, newName);
        var oldRuntimeIds = ReportFile.RuntimeIds(oldReport);
        var oldCellIds = ReportFile.Results(oldReport).SelectMany(r => new[] { ReportFile.Str(r, "producer"), ReportFile.Str(r, "consumer") }).OfType<string>().ToHashSet();
        foreach (var k in map.Keys)
            if (!oldRuntimeIds.Contains(k) && !oldCellIds.Contains(k))
                throw new ArgumentException($"--map {k}={map[k]}: {oldName} has no runtime {k} (it has {string.Join(", ", oldRuntimeIds.Order(StringComparer.Ordinal))})");

        var oldCells = Index(oldReport, oldName, map);
        var newCells = Index(newReport, newName, new Dictionary<string, string>());
        var regressions = new List<OutcomeChange>();
        var fixes = new List<OutcomeChange>();
        var other = new List<OutcomeChange>();
        var added = new List<OutcomeChange>();
        var vanished = new List<OutcomeChange>();
        var drifts = new List<ToleranceDrift>();
        int compared = 0;
        foreach (var (name, n) in newCells)
        {
            var no = ReportFile.Str(n, "outcome");
            if (!oldCells.TryGetValue(name, out var o))
            {
                added.Add(Change(name, null, n));
                if (no == "fail") regressions.Add(Change(name, null, n));
                continue;
            }
            compared++;
            var oo = ReportFile.Str(o, "outcome");
            if (oo == no)
            {
                if (oo == "pass" && Drift(name, o, n) is { } d) drifts.Add(d);
                continue;
            }
            var change = Change(name, o, n);
            if (oo == "pass" || no == "fail") regressions.Add(change);
            else if (no == "pass" && oo is "fail" or "known_failure") fixes.Add(change);
            else other.Add(change);
        }
        foreach (var (name, o) in oldCells)
        {
            if (newCells.ContainsKey(name)) continue;
            var change = Change(name, o, null);
            vanished.Add(change);
            if (change.Old == "pass") regressions.Add(change);
        }

        var warnings = new List<string>();
        foreach (var (report, label) in new[] { (oldReport, oldName), (newReport, newName) })
            if (report["complete"] is JsonValue c && c.TryGetValue<bool>(out var complete) && !complete)
                warnings.Add($"{label} is not a complete run (filtered, or one shard: merge shards first), so new and vanished cells may only reflect the selection");

        return new RunComparison(oldName, newName, map, compared, regressions, fixes, other, added, vanished, drifts,
            EnvironmentChanges(oldReport, newReport, map), warnings, ReportFile.Summary(oldReport), ReportFile.Summary(newReport));
    }

    private static OutcomeChange Change(string name, JsonNode? o, JsonNode? n)
    {
        var where = n ?? o!;
        var problems = (where["problems"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(p => ReportFile.Str(p, "subject") is { Length: > 0 } subject ? $"{ReportFile.Str(p, "code")}: {subject}" : ReportFile.Str(p, "code"))
            .OfType<string>().Distinct().ToList();
        return new OutcomeChange(name, o is null ? null : ReportFile.Str(o, "outcome"), n is null ? null : ReportFile.Str(n, "outcome"),
            FirstLine(ReportFile.Str(where, "message")), string.Join("; ", problems));
    }

    private static ToleranceDrift? Drift(string name, JsonNode o, JsonNode n)
    {
        if (ReportFile.Num(o, "max_abs_diff") is not { } a || ReportFile.Num(n, "max_abs_diff") is not { } b) return null;
        var atol = ReportFile.Num(n["tolerance"], "atol") ?? ReportFile.Num(o["tolerance"], "atol");
        var floor = atol is { } t && t > 0 ? t * DriftFloorOfAtol : DriftFloorAbsolute;
        var why = new List<string>();
        if (Math.Max(b, floor) >= DriftFactor * Math.Max(a, floor))
            why.Add($"grew {(a > 0 ? (b / a).ToString("0.#", CultureInfo.InvariantCulture) + "×" : "from 0")}");
        if (atol is { } h && a <= 0.5 * h && b > 0.5 * h)
            why.Add(b > h ? "now beyond atol" : "crossed half of atol");
        return why.Count == 0 ? null : new ToleranceDrift(name, a, b, atol, string.Join("; ", why));
    }

    /// <summary>Cells by name; the old report's names are rebuilt with mapped producer and consumer ids.</summary>
    private static Dictionary<string, JsonNode> Index(JsonNode report, string label, IReadOnlyDictionary<string, string> map)
    {
        var cells = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        var original = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in ReportFile.Results(report))
        {
            var name = ReportFile.Str(r, "cell") ?? throw new InvalidDataException($"{label}: a result has no cell name");
            var renamed = Rename(r, name, map);
            if (original.TryGetValue(renamed, out var first))
                throw new InvalidDataException(first == name
                    ? $"{label}: cell {name} appears twice"
                    : $"{label}: cells {first} and {name} are both {renamed} after --map; the map must not merge two runtimes");
            original[renamed] = name;
            cells[renamed] = r;
        }
        return cells;
    }

    private static string Rename(JsonNode r, string name, IReadOnlyDictionary<string, string> map)
    {
        if (map.Count == 0) return name;
        Cell cell;
        try { cell = Cell.Parse(name); }
        catch (FormatException) { return name; }
        // The result's own fields win over the parsed name: ids are exact, never split again.
        var producer = ReportFile.Str(r, "producer") ?? cell.Producer;
        var consumer = ReportFile.Str(r, "consumer") ?? cell.Consumer;
        return (cell with { Producer = map.GetValueOrDefault(producer, producer), Consumer = map.GetValueOrDefault(consumer, consumer) }).Name;
    }

    private static IReadOnlyList<EnvironmentChange> EnvironmentChanges(JsonNode oldReport, JsonNode newReport, IReadOnlyDictionary<string, string> map)
    {
        var changes = new List<EnvironmentChange>();
        void Diff(string prefix, Dictionary<string, string?> a, Dictionary<string, string?> b)
        {
            foreach (var k in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
            {
                var x = a.GetValueOrDefault(k);
                var y = b.GetValueOrDefault(k);
                if (x != y) changes.Add(new EnvironmentChange(prefix + k, x, y));
            }
        }
        Diff("complete", Flat(oldReport["complete"]), Flat(newReport["complete"]));
        Diff("selection", Flat(oldReport["selection"]), Flat(newReport["selection"]));
        Diff("environment", Flat(oldReport["environment"]), Flat(newReport["environment"]));

        // Both builds may be listed in both reports (discovery finds every built worker): the old side
        // of a mapping is its source, the new side its target.
        var oldRuntimes = ReportFile.Runtimes(oldReport).Where(r => !map.Values.Contains(ReportFile.Str(r, "id")!) || map.ContainsKey(ReportFile.Str(r, "id")!))
            .ToDictionary(r => Rename(ReportFile.Str(r, "id")!, map), r => r);
        var newRuntimes = ReportFile.Runtimes(newReport).Where(r => !map.ContainsKey(ReportFile.Str(r, "id")!) || map.Values.Contains(ReportFile.Str(r, "id")!))
            .ToDictionary(r => ReportFile.Str(r, "id")!, r => r);
        foreach (var id in newRuntimes.Keys.Union(oldRuntimes.Keys))
        {
            var o = oldRuntimes.GetValueOrDefault(id);
            var n = newRuntimes.GetValueOrDefault(id);
            if (o is null || n is null)
            {
                changes.Add(new EnvironmentChange($"runtime {id}", o is null ? null : ReportFile.Str(o, "version"), n is null ? null : ReportFile.Str(n, "version")));
                continue;
            }
            Diff($"runtime {id} ", RuntimeFacts(o), RuntimeFacts(n));
        }

        // A loosened tolerance could turn a gate green; each case is shown once.
        var oldTol = Tolerances(oldReport);
        foreach (var (c, t) in Tolerances(newReport))
            if (oldTol.TryGetValue(c, out var was) && was != t) changes.Add(new EnvironmentChange($"tolerance of {c}", was, t));
        return changes;
    }

    private static string Rename(string id, IReadOnlyDictionary<string, string> map) => map.GetValueOrDefault(id, id);

    private static Dictionary<string, string?> RuntimeFacts(JsonNode r)
    {
        var facts = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var k in new[] { "kind", "version", "device", "status" })
            if (r[k] is { } v) facts[k] = Scalar(v);
        // A worker's pid differs every run and says nothing about the environment.
        foreach (var (k, v) in Flat(r["hello"]).Where(kv => kv.Key != ".pid")) facts["hello" + k] = v;
        return facts;
    }

    private static Dictionary<string, string?> Tolerances(JsonNode report)
    {
        var t = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var r in ReportFile.Results(report))
            if (ReportFile.Str(r, "case") is { } c && r["tolerance"] is JsonObject tol) t.TryAdd(c, tol.ToJsonString());
        return t;
    }

    /// <summary>Leaves of a JSON tree by dotted path ("" for a scalar root); arrays are compared whole.</summary>
    private static Dictionary<string, string?> Flat(JsonNode? node)
    {
        var d = new Dictionary<string, string?>(StringComparer.Ordinal);
        void Walk(string path, JsonNode? n)
        {
            if (n is JsonObject o) foreach (var (k, v) in o) Walk(path + "." + k, v);
            else if (n is not null) d[path] = Scalar(n);
        }
        Walk("", node);
        return d;
    }

    private static string? Scalar(JsonNode n) =>
        n is JsonValue v && v.TryGetValue<string>(out var s) ? s : n.ToJsonString();

    private static string FirstLine(string? s) => (s ?? "").Split('\n', 2)[0];

    // ---- Markdown ----------------------------------------------------------------------------

    /// <summary>
    /// GitHub takes at most 1 MiB per step summary and 65,536 characters per PR comment: the summary stays
    /// under this, for any number of changes, so one text serves both.
    /// </summary>
    public const int MarkdownLimit = 60_000;

    /// <summary>
    /// A PR summary read in ten seconds: the verdict, the regressions (cell, problem, a link to the cell in
    /// the HTML report), then fixes, new and vanished cells, then the rest, folded. Tables are cut, the
    /// regressions last, until the whole fits <see cref="MarkdownLimit"/>.
    /// </summary>
    /// <param name="htmlReport">Where the new run's compatibility.html is, as a link's target (default: beside this summary).</param>
    public string Markdown(string htmlReport = "compatibility.html")
    {
        foreach (var (regressionRows, otherRows) in new[] { (TableCap, TableCap), (TableCap, 20), (TableCap, 5), (TableCap, 0), (20, 0), (5, 0), (0, 0) })
        {
            var md = RenderMarkdown(htmlReport, regressionRows, otherRows);
            if (md.Length <= MarkdownLimit) return md;
        }
        return RenderMarkdown(htmlReport, 0, 0);
    }

    private string RenderMarkdown(string htmlReport, int regressionRows, int otherRows)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## Conformance comparison: {OldName} → {NewName}").AppendLine();
        sb.AppendLine(Verdict()).AppendLine();
        foreach (var w in Warnings) sb.AppendLine($"> ⚠️ {w}").AppendLine();
        if (Map.Count > 0)
            sb.AppendLine("Runtime ids mapped: " + string.Join(", ", Map.Select(kv => $"`{kv.Key}` → `{kv.Value}`")) + ".").AppendLine();

        string Link(OutcomeChange c) => c.New is null ? "" : $"[detail]({htmlReport}#{ReportHtml.CellAnchor(c.Cell)})";
        Section(sb, "Regressions", Regressions.Count, open: true, regressionRows,
            "A cell that left pass, or arrived at an unexpected failure.", ["cell", "old → new", "problem", ""],
            Regressions.Select(c => new[] { $"`{c.Cell}`", $"{c.Old ?? "(new)"} → {c.New ?? "(vanished)"}", Short(c.Problems.Length > 0 ? c.Problems : c.Message), Link(c) }));
        Changes(sb, "Fixes", Fixes, open: true, otherRows, Link);
        Changes(sb, "New cells", NewCells, open: false, otherRows, Link);
        Changes(sb, "Vanished cells", VanishedCells, open: false, otherRows, Link);
        Changes(sb, "Other outcome changes", OtherChanges, open: false, otherRows, Link);
        Section(sb, "Tolerance drift", Drifts.Count, false, otherRows,
            "Cells that pass in both runs, whose largest output difference grew tenfold (values below 1/1000 of atol count as that) or crossed half of atol.",
            ["cell", "old max abs", "new max abs", "atol", "why"],
            Drifts.Select(d => new[] { $"`{d.Cell}`", G(d.OldMaxAbs), G(d.NewMaxAbs), d.Atol is { } a ? G(a) : "", d.Why }));
        Section(sb, "Environment", Environment.Count, false, otherRows, null, ["what", "old", "new"],
            Environment.Select(e => new[] { e.Subject }.Concat(Lines(e.Old, e.New)).ToArray()));

        sb.AppendLine("### Totals").AppendLine();
        sb.AppendLine("| | pass | known failure | fail | skipped | not applicable |").AppendLine("|---|---|---|---|---|---|");
        foreach (var (label, s) in new[] { ("old", OldSummary), ("new", NewSummary) })
            sb.AppendLine($"| {label} | {N(s.Pass)} | {N(s.KnownFailure)} | {N(s.Fail)} | {N(s.Skipped)} | {N(s.NotApplicable)} |");
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>The one line a reviewer reads: "No regressions: 2,883 cells compared, 2 fixes, …".</summary>
    public string Verdict()
    {
        var head = HasRegressions ? $"❌ **{Plural(Regressions.Count, "regression")}**" : "✅ **No regressions**";
        var parts = new[]
        {
            $"{N(Compared)} cells compared",
            Plural(Fixes.Count, "fix", "fixes"),
            Plural(OtherChanges.Count, "other change"),
            $"{N(NewCells.Count)} new",
            $"{N(VanishedCells.Count)} vanished",
            Plural(Drifts.Count, "tolerance drift"),
            Plural(Environment.Count, "environment change"),
        };
        return $"{head}: {string.Join(", ", parts)}.";
    }

    private static void Changes(StringBuilder sb, string title, IReadOnlyList<OutcomeChange> rows, bool open, int cap, Func<OutcomeChange, string> link) =>
        Section(sb, title, rows.Count, open, cap, null, ["cell", "old", "new", "problem", ""],
            rows.Select(c => new[] { $"`{c.Cell}`", c.Old ?? "(new)", c.New ?? "(vanished)", Short(c.Problems.Length > 0 ? c.Problems : c.Message), link(c) }));

    private static void Section(StringBuilder sb, string title, int count, bool open, int cap, string? intro, string[] header, IEnumerable<string[]> rows)
    {
        if (count == 0) return;
        sb.AppendLine($"### {title} ({N(count)})").AppendLine();
        if (intro is not null) sb.AppendLine(intro).AppendLine();
        if (cap == 0)
        {
            sb.AppendLine($"{N(count)} rows, left out to keep this summary under GitHub's size limit: the JSON and HTML reports list them.").AppendLine();
            return;
        }
        // Long tables fold away so the verdict and the regressions stay on the first screen.
        bool fold = !open && count > 10 || count > cap;
        if (fold) sb.AppendLine($"<details><summary>{N(count)} rows</summary>").AppendLine();
        sb.AppendLine("| " + string.Join(" | ", header) + " |");
        sb.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var r in rows.Take(cap)) sb.AppendLine("| " + string.Join(" | ", r) + " |");
        if (count > cap) sb.AppendLine().AppendLine($"… and {N(count - cap)} more, in the JSON and HTML reports.");
        sb.AppendLine();
        if (fold) sb.AppendLine("</details>").AppendLine();
    }

    /// <summary>Multi-line values (a build config) show only the lines that differ, one per &lt;br&gt;.</summary>
    private static string[] Lines(string? a, string? b)
    {
        if (a is null || b is null || !a.Contains('\n') && !b.Contains('\n')) return [Short(a ?? "—"), Short(b ?? "—")];
        var (x, y) = (a.Split('\n').Select(l => l.Trim()).ToList(), b.Split('\n').Select(l => l.Trim()).ToList());
        string Join(IEnumerable<string> lines)
        {
            var kept = lines.Where(l => l.Length > 0).ToList();
            return string.Join("<br>", kept.Take(8).Select(Short)) + (kept.Count > 8 ? $"<br>… {kept.Count - 8} more lines" : "");
        }
        return [Join(x.Except(y)), Join(y.Except(x))];
    }

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string G(double d) => d.ToString("g3", CultureInfo.InvariantCulture);

    private static string Plural(int n, string one, string? many = null) => $"{N(n)} {(n == 1 ? one : many ?? one + "s")}";

    private static string Short(string s)
    {
        var line = FirstLine(s).Replace("|", "\\|").Replace("<", "&lt;");
        return line.Length <= 160 ? line : line[..160] + "…";
    }
}
