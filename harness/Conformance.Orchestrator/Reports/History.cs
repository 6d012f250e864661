using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// <c>conformance history REPORT…</c>: a series of reports (compatibility.json or baselines) as one static
/// page, like wpt.fyi's history view: the summary over time, for each cell that ever changed when it last
/// changed and to what, and for each ledger entry since when it has held.
/// </summary>
public sealed record History(IReadOnlyList<HistoryRun> Runs, IReadOnlyList<CellHistory> Changed, int Unchanged, IReadOnlyList<LedgerHistory> Ledger)
{
    /// <summary>Runs in the order they were made (their <c>generated</c> time; the order given when a report has none).</summary>
    public static History Build(IReadOnlyList<(string Source, JsonNode Report)> reports)
    {
        if (reports.Count == 0) throw new ArgumentException("history needs at least one report");
        var ordered = reports.Select((r, i) => (r.Source, r.Report, Given: i, When: When(r.Report)))
            .OrderBy(r => r.When ?? DateTimeOffset.MinValue).ThenBy(r => r.Given).ToList();
        var runs = new List<HistoryRun>();
        foreach (var (source, report, _, _) in ordered)
        {
            var cells = new Dictionary<string, (string, string?, string)>(StringComparer.Ordinal);
            foreach (var r in ReportFile.Results(report))
            {
                var name = ReportFile.Str(r, "cell") ?? throw new InvalidDataException($"{source}: a result has no cell name");
                var problems = string.Join("; ", (r["problems"] as JsonArray ?? []).OfType<JsonObject>().Select(p => ReportFile.Str(p, "code")).Distinct());
                if (!cells.TryAdd(name, (ReportFile.Str(r, "outcome") ?? "?", ReportFile.Str(r["known_failure"], "id"), problems)))
                    throw new InvalidDataException($"{source}: cell {name} appears twice");
            }
            var commit = ReportFile.Str(report, "commit");
            var generated = ReportFile.Str(report, "generated");
            var label = $"#{runs.Count + 1}" + (commit is null ? "" : $" {commit[..Math.Min(8, commit.Length)]}") + (generated is null ? "" : $" {generated[..Math.Min(10, generated.Length)]}");
            runs.Add(new HistoryRun(runs.Count, label, source, commit, generated, ReportFile.Summary(report), cells));
        }

        var names = runs.SelectMany(r => r.Cells.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var changed = new List<CellHistory>();
        int unchanged = 0;
        foreach (var name in names)
        {
            var outcomes = runs.Select(r => r.Cells.TryGetValue(name, out var c) ? c.Outcome : null).ToList();
            int last = -1;
            for (int i = 1; i < outcomes.Count; i++) if (outcomes[i] != outcomes[i - 1]) last = i;
            if (last < 0) { unchanged++; continue; }
            var latest = runs[last].Cells.TryGetValue(name, out var now) ? now.Problems : "";
            changed.Add(new CellHistory(name, last, outcomes[last - 1], outcomes[last], outcomes, latest));
        }
        changed.Sort((a, b) => b.LastChangedRun != a.LastChangedRun ? b.LastChangedRun.CompareTo(a.LastChangedRun) : string.CompareOrdinal(a.Cell, b.Cell));

        var ledger = new List<LedgerHistory>();
        var ids = runs.SelectMany(r => r.Cells.Values.Select(c => c.Ledger)).OfType<string>().Distinct().Order(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            var held = runs.Select(r => r.Cells.Values.Count(c => c.Ledger == id)).ToList();
            int lastHeld = held.FindLastIndex(n => n > 0);
            int since = lastHeld;
            while (since > 0 && held[since - 1] > 0) since--;
            ledger.Add(new LedgerHistory(id, since, lastHeld == runs.Count - 1 ? null : lastHeld, held[^1]));
        }
        ledger.Sort((a, b) => (a.LastHeld is null) != (b.LastHeld is null) ? (a.LastHeld is null ? -1 : 1)
            : a.HeldSince != b.HeldSince ? b.HeldSince.CompareTo(a.HeldSince) : string.CompareOrdinal(a.Id, b.Id));
        return new History(runs, changed, unchanged, ledger);
    }

    private static DateTimeOffset? When(JsonNode report) =>
        DateTimeOffset.TryParse(ReportFile.Str(report, "generated"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    private static readonly string[] Outcomes = ["pass", "known_failure", "fail", "skipped", "not_applicable"];

    private static int Count(ReportSummary s, string outcome) => outcome switch
    {
        "pass" => s.Pass, "known_failure" => s.KnownFailure, "fail" => s.Fail, "skipped" => s.Skipped, _ => s.NotApplicable,
    };

    private static string E(string? s) => WebUtility.HtmlEncode(s ?? "");

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// The page: self-contained (no script, no external resource), each run a column, each change a row
    /// with <c>data-cell</c> and <c>data-run</c> so a browser test can find it.
    /// </summary>
    /// <param name="reportLink">Per run, where its compatibility.html is (for links to a cell), or null.</param>
    public string Html(Func<HistoryRun, string?>? reportLink = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TorchSharp ⇄ PyTorch conformance history</title><style>");
        sb.AppendLine("body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
                      + "code{font-size:12px}.bar{display:flex;width:24em;height:1em;border:1px solid #999}.bar span{display:block;height:100%}"
                      + ".pass{background:#2e7d32;color:#fff}.known_failure{background:#f9a825}.fail{background:#c62828;color:#fff}.skipped{background:#9e9e9e}.not_applicable{background:#e0e0e0}.absent{background:#fff}"
                      + "td.o{width:1.2em;padding:0}td.o span{display:block;width:1.2em;height:1.2em}.now{font-weight:bold}");
        sb.AppendLine("</style></head><body>");
        sb.AppendLine($"<h1>Conformance history: {N(Runs.Count)} runs</h1>");
        sb.AppendLine($"<p>From {E(Runs[0].Label)} to {E(Runs[^1].Label)}. {N(Changed.Count)} cells changed at least once, {N(Unchanged)} never did. "
                      + "Colours: <span class=\"pass\">pass</span> <span class=\"known_failure\">known failure</span> <span class=\"fail\">fail</span> <span class=\"skipped\">skipped</span> <span class=\"not_applicable\">not applicable</span>.</p>");

        sb.AppendLine("<h2 id=\"summary\">Summary over time</h2><table><tr><th>run</th><th>source</th><th>outcomes</th>");
        foreach (var o in Outcomes) sb.Append($"<th>{E(o.Replace('_', ' '))}</th>");
        sb.AppendLine("</tr>");
        foreach (var r in Runs)
        {
            var total = Math.Max(1, Outcomes.Sum(o => Count(r.Summary, o)));
            sb.Append($"<tr data-run=\"{E(r.Label)}\"><td>{E(r.Label)}</td><td><code>{E(r.Source)}</code></td><td><div class=\"bar\" title=\"{E(r.Summary.Line)}\">");
            foreach (var o in Outcomes)
                if (Count(r.Summary, o) > 0) sb.Append($"<span class=\"{o}\" style=\"width:{100.0 * Count(r.Summary, o) / total:0.###}%\"></span>");
            sb.Append("</div></td>");
            foreach (var o in Outcomes)
            {
                var delta = r.Index == 0 ? 0 : Count(r.Summary, o) - Count(Runs[r.Index - 1].Summary, o);
                sb.Append($"<td>{N(Count(r.Summary, o))}{(delta == 0 ? "" : $" ({(delta > 0 ? "+" : "")}{N(delta)})")}</td>");
            }
            sb.AppendLine("</tr>");
        }
        sb.AppendLine("</table>");

        sb.AppendLine($"<h2 id=\"cells\">Cells that changed ({N(Changed.Count)})</h2><p>Latest change first. One square per run, oldest left.</p>");
        if (Changed.Count > 0)
        {
            sb.Append("<table><tr><th>cell</th><th>last changed in</th><th>from → to</th><th>problems now</th>");
            foreach (var r in Runs) sb.Append($"<th title=\"{E(r.Label)}\">{r.Index + 1}</th>");
            sb.AppendLine("</tr>");
            foreach (var c in Changed)
            {
                var run = Runs[c.LastChangedRun];
                var link = reportLink?.Invoke(Runs[^1]) is { } href && c.Outcomes[^1] is not null
                    ? $"<a href=\"{E(href)}#{ReportHtml.CellAnchor(c.Cell)}\"><code>{E(c.Cell)}</code></a>" : $"<code>{E(c.Cell)}</code>";
                sb.Append($"<tr class=\"change\" data-cell=\"{E(c.Cell)}\" data-run=\"{E(run.Label)}\" data-to=\"{E(c.To ?? "absent")}\"><td>{link}</td><td>{E(run.Label)}</td>"
                          + $"<td>{E(c.From ?? "(absent)")} → <span class=\"{E(c.To ?? "absent")}\">{E(c.To ?? "(absent)")}</span></td><td>{E(c.Problems)}</td>");
                for (int i = 0; i < c.Outcomes.Count; i++)
                    sb.Append($"<td class=\"o\"><span class=\"{E(c.Outcomes[i] ?? "absent")}\" title=\"{E(Runs[i].Label)}: {E(c.Outcomes[i] ?? "absent")}\"></span></td>");
                sb.AppendLine("</tr>");
            }
            sb.AppendLine("</table>");
        }

        sb.AppendLine($"<h2 id=\"ledger\">Ledger entries ({N(Ledger.Count)})</h2><p>Since when each known-failure entry has held (matched a cell) without a break; entries that no longer hold last.</p>");
        sb.AppendLine("<table><tr><th>entry</th><th>held since</th><th>until</th><th>cells in the latest run</th></tr>");
        foreach (var l in Ledger)
            sb.AppendLine($"<tr class=\"entry\" data-entry=\"{E(l.Id)}\" data-since=\"{E(Runs[l.HeldSince].Label)}\"><td><code>{E(l.Id)}</code></td><td>{E(Runs[l.HeldSince].Label)}</td>"
                          + $"<td class=\"{(l.LastHeld is null ? "now" : "")}\">{(l.LastHeld is { } last ? E(Runs[last].Label) + " (no longer holds)" : "still holds")}</td><td>{N(l.CellsNow)}</td></tr>");
        sb.AppendLine("</table></body></html>");
        return sb.ToString();
    }

    /// <summary>The same, short, as Markdown: the summary table, the latest changes, the entries that began or ended.</summary>
    public string Markdown(int rows = 50)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## Conformance history: {N(Runs.Count)} runs").AppendLine();
        sb.AppendLine("| run | pass | known failure | fail | skipped | not applicable |").AppendLine("|---|---|---|---|---|---|");
        foreach (var r in Runs)
            sb.AppendLine($"| {r.Label} | " + string.Join(" | ", Outcomes.Select(o => N(Count(r.Summary, o)))) + " |");
        sb.AppendLine().AppendLine($"{N(Changed.Count)} cells changed at least once, {N(Unchanged)} never did.").AppendLine();
        if (Changed.Count > 0)
        {
            sb.AppendLine("| cell | last changed in | from → to |").AppendLine("|---|---|---|");
            foreach (var c in Changed.Take(rows)) sb.AppendLine($"| `{c.Cell}` | {Runs[c.LastChangedRun].Label} | {c.From ?? "(absent)"} → {c.To ?? "(absent)"} |");
            if (Changed.Count > rows) sb.AppendLine().AppendLine($"… and {N(Changed.Count - rows)} more in history.html.");
            sb.AppendLine();
        }
        return sb.ToString();
    }
}
