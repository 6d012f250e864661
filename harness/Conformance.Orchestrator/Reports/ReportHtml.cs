using System.Net;
using System.Text;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>
/// reports/compatibility.html: the same grids, coloured, with each cell's message on hover; a click on a
/// cell shows its details. Self-contained and script-free: each cell links to a hidden panel that
/// CSS's <c>:target</c> reveals, so the file works offline and from file://.
/// </summary>
public static class ReportHtml
{
    private static string E(string? s) => WebUtility.HtmlEncode(s ?? "");

    public static string Render(RunResult run)
    {
        // Panel ids by position: cell names hold '/', '>' and '@', which make awkward fragments.
        var ids = new Dictionary<CellResult, string>(ReferenceEqualityComparer.Instance);
        foreach (var r in run.Results) ids[r] = CellAnchor(r.Cell.Name);
        var sb = new StringBuilder();
        sb.AppendLine("<!doctype html><html><head><meta charset=\"utf-8\"><title>TorchSharp ⇄ PyTorch compatibility</title><style>");
        sb.AppendLine("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
                      + "td,th{border:1px solid #ccc;padding:4px 10px;text-align:left;font-size:14px}th{background:#f4f4f4}"
                      + ".pass{background:#d8f5d0}.fail{background:#f9c9c9;font-weight:bold}.known_failure{background:#fbe8b0}"
                      + ".not_applicable{background:#eee;color:#777}.skipped{background:#dde6f5}pre{background:#f7f7f7;padding:8px}"
                      + "td a{color:inherit;text-decoration:none;display:block}.cell-details{display:none;border:1px solid #999;padding:4px 12px;margin:.5em 0 1em;max-width:60em}"
                      + ".cell-details:target{display:block}.cell-details dt{font-weight:bold;margin-top:.4em}.cell-details dd{margin-left:1.5em}.cell-details dd span{padding:0 6px}");
        sb.AppendLine("</style></head><body>");
        sb.AppendLine("<h1>TorchSharp ⇄ PyTorch compatibility</h1>");
        sb.AppendLine($"<p><b>{E(run.SummaryLine())}</b><br>Generated {E(run.Started.ToString("u"))}</p>");
        var overview = Overview.From(run.Results);
        sb.AppendLine("<h2>Per .NET library</h2><p>Per route and TorchSharp side: a state-dict route's TorchSharp side runs once per .NET library, PyBridge next to TorchCheckpoints "
                      + "(pass / known / unexpected over every case and mode; TorchSharp → TorchSharp counts what a library reads, from either library's files).</p><table><tr><th>route</th><th>TorchSharp side</th>");
        foreach (var d in LibraryTable.Directions) sb.Append($"<th>{E(d)}</th>");
        sb.AppendLine("</tr>");
        foreach (var (route, side, counts) in LibraryTable.Rows(LibraryTable.Of(run.Results)))
            sb.AppendLine($"<tr><td><code>{E(route)}</code></td><td>{E(side)}</td>" + string.Concat(counts.Select(c => $"<td>{(c.Contains("**") ? $"<b class=\"fail\">{E(c.Replace("**", ""))}</b>" : E(c))}</td>")) + "</tr>");
        sb.AppendLine("</table>");
        if (LibraryRemedy.Find(run.Results) is { Count: > 0 } remedies)
        {
            sb.AppendLine($"<p>Where PyBridge fails and TorchCheckpoints reads the same file ({E(LibraryRemedy.Words)}):</p><ul>");
            foreach (var (route, cells) in remedies)
                sb.AppendLine($"<li><code>{E(route)}</code>: {cells.Count} cells, e.g. <code>{E(cells[0].Name)}</code>{(LibraryRemedy.WordsFor(route) == LibraryRemedy.Words ? "" : $" ({E(LibraryRemedy.WordsFor(route))})")}</li>");
            sb.AppendLine("</ul>");
        }
        sb.AppendLine("<h2>Overview</h2><p>Outcomes of every direction and load mode, per case and route. Click a cell for its table below; hover or click a cell of those tables for its message and details.</p><table><tr><th>case</th>");
        foreach (var r in overview.Routes) sb.Append($"<th>{E(r)}</th>");
        sb.AppendLine("</tr>");
        foreach (var (c, cells) in overview.Rows)
        {
            sb.Append($"<tr><td>{E(c)}</td>");
            foreach (var (route, text) in overview.Routes.Zip(cells))
            {
                var group = run.Results.Where(x => x.Cell.Case == c && x.Cell.Route == route).ToList();
                var worst = group.Count == 0 ? "" : group.Any(x => x.Outcome == Outcome.Fail) ? "fail" : group.Any(x => x.Outcome == Outcome.KnownFailure) ? "known_failure"
                    : group.All(x => x.Outcome is Outcome.NotApplicable or Outcome.Skipped) ? "not_applicable" : "pass";
                sb.Append($"<td class=\"{worst}\"><a href=\"#{GridId(c, route)}\">{E(text)}</a></td>");
            }
            sb.AppendLine("</tr>");
        }
        sb.AppendLine("</table>");
        var known = run.Results.Where(r => r.Outcome == Outcome.KnownFailure).GroupBy(r => r.Declared!).ToList();
        if (known.Count > 0)
        {
            sb.AppendLine("<h2>Known incompatibilities</h2><table><tr><th>cells</th><th>reason</th><th>example</th></tr>");
            foreach (var g in known)
                sb.AppendLine($"<tr class=\"known_failure\"><td>{g.Count()}</td><td>{E(g.Key.Reason)} <a href=\"{E(g.Key.Link)}\">link</a></td><td><code>{E(g.First().Cell.Name)}</code><br>{E(ReportText.FirstLine(g.First().Message))}</td></tr>");
            sb.AppendLine("</table>");
        }
        var judges = run.Results.Where(r => r.JudgedBy is not null).GroupBy(r => r.JudgedBy!).ToList();
        if (judges.Count > 0)
        {
            sb.AppendLine("<h2>GPU rows: who judged them</h2><table><tr><th>cells</th><th>judged by</th></tr>");
            foreach (var g in judges) sb.AppendLine($"<tr><td>{g.Count()}</td><td>{E(g.Key)}</td></tr>");
            sb.AppendLine("</table>");
        }
        var differences = Reports.DeviceRules.Find(run.Results);
        if (differences.Count > 0)
        {
            sb.AppendLine("<h2 id=\"device-differences\">Device differences: CPU and CUDA PyTorch disagree</h2><p>Each artifact and load mode where a PyTorch on CUDA does not do what every PyTorch on the CPU does; <b>silent</b>: CUDA loads wrong values where the CPU refuses the file or reads it right.</p>");
            sb.AppendLine("<table><tr><th>artifact</th><th>mode</th><th>CPU</th><th>CUDA</th><th>rule</th></tr>");
            foreach (var d in differences)
                sb.AppendLine($"<tr class=\"{(d.Silent ? "fail" : "known_failure")}\"><td><code>{E($"{d.Case}/{d.Route}/{d.Producer}")}</code>{(d.Silent ? " <b>silent</b>" : "")}</td><td>{E(d.Mode)}</td>"
                              + $"<td>{E(string.Join(", ", d.Cpu.Select(c => $"{c.Consumer}: {c.State}")))}</td><td>{E(string.Join(", ", d.Cuda.Select(c => $"{c.Consumer}: {c.State}")))}</td><td>{E(d.Rule?.Warning ?? "")}</td></tr>");
            sb.AppendLine("</table>");
        }
        sb.AppendLine("<h2>Runtimes</h2><table><tr><th>id</th><th>kind</th><th>version</th><th>where</th><th>status</th></tr>");
        foreach (var r in run.Runtimes)
            sb.AppendLine($"<tr><td>{E(r.Runtime.Id)}</td><td>{E(r.Runtime.Kind)}</td><td>{E(r.Hello?["version"]?.GetValue<string>() ?? r.Runtime.Version)}</td>"
                          + $"<td>{E(r.Runtime.Where)}</td><td>{E(r.Runtime.Available ? r.Error ?? "available" : "missing: " + r.Runtime.MissingReason)}</td></tr>");
        sb.AppendLine("</table>");
        foreach (var g in Grid.From(run.Results))
        {
            sb.AppendLine($"<h2 id=\"{GridId(g.Case, g.Route)}\">{E(g.Case)} via {E(g.Route)}</h2><table><tr><th>producer → consumer</th>");
            foreach (var m in g.Modes) sb.Append($"<th>{E(m)}</th>");
            sb.AppendLine("</tr>");
            foreach (var row in g.Rows)
            {
                sb.Append($"<tr><td>{E(row.Producer)} → {E(row.Consumer)}</td>");
                foreach (var c in row.Cells)
                {
                    var title = c is null ? "" : c.Cell.Name + "\n" + c.Message + (c.Declared is null ? "" : "\n" + c.Declared.Reason + "\n" + c.Declared.Link);
                    sb.Append(c is null ? "<td></td>"
                        : $"<td class=\"{c.Outcome.Wire()}\" title=\"{E(title)}\" data-cell=\"{E(c.Cell.Name)}\"><a href=\"#{ids[c]}\">{E(Grid.Word(c))}</a></td>");
                }
                sb.AppendLine("</tr>");
            }
            sb.AppendLine("</table>");
            foreach (var c in g.Rows.SelectMany(r => r.Cells).OfType<CellResult>()) CellDetails(sb, c, ids[c]);
        }
        var failures = run.Results.Where(r => r.Outcome == Outcome.Fail).ToList();
        if (failures.Count > 0)
        {
            sb.AppendLine("<h2>Unexpected failures</h2><table><tr><th>cell</th><th>message</th></tr>");
            foreach (var r in failures)
                sb.AppendLine($"<tr class=\"fail\"><td><a href=\"#{ids[r]}\"><code>{E(r.Cell.Name)}</code></a></td><td><pre>{E(r.Message)}</pre></td></tr>");
            sb.AppendLine("</table>");
        }
        sb.AppendLine("</body></html>");
        return sb.ToString();
    }

    /// <summary>
    /// A cell's stable anchor in the report, derived from its name alone, so other pages (compare's PR
    /// summary, the history page) link into any run's report: its name's letters and digits, and a short
    /// hash that keeps names differing only in punctuation apart.
    /// </summary>
    public static string CellAnchor(string cellName)
    {
        var slug = new string(cellName.Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '-').ToArray());
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(cellName)))[..8];
        return $"cell-{slug}-{hash}";
    }

    private static string GridId(string @case, string route) => "grid-" + new string($"{@case}-{route}".Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '-').ToArray());

    /// <summary>One cell's hidden panel: everything the JSON report says about it, shown when the cell is clicked.</summary>
    private static void CellDetails(StringBuilder sb, CellResult c, string id)
    {
        var tol = Catalogue.Cases.FirstOrDefault(x => x.Name == c.Cell.Case) is { } spec ? Catalogue.ToleranceFor(spec, c.Cell) : null;
        sb.Append($"<div class=\"cell-details\" id=\"{id}\"><dl><dt>cell</dt><dd><code>{E(c.Cell.Name)}</code></dd>");
        sb.Append($"<dt>outcome</dt><dd><span class=\"{c.Outcome.Wire()}\">{E(c.Outcome.Wire())}</span></dd>");
        if (!string.IsNullOrEmpty(c.Message)) sb.Append($"<dt>message</dt><dd><pre>{E(c.Message)}</pre></dd>");
        if (c.Problems is { Count: > 0 } problems)
            sb.Append("<dt>problems</dt><dd><ul>").Append(string.Concat(problems.Select(p => $"<li>{E(p?.ToString())}</li>"))).Append("</ul></dd>");
        if (c.Diff is { } d) sb.Append($"<dt>max abs diff</dt><dd>{d.MaxAbs:0.0#e0} (max rel {d.MaxRel:0.0#e0})</dd>");
        if (tol is not null) sb.Append($"<dt>tolerance</dt><dd>atol {tol.Atol:0.#e0}, rtol {tol.Rtol:0.#e0}</dd>");
        if (c.Declared is { } k)
            sb.Append($"<dt>known failure</dt><dd>{E(k.Reason)} <a href=\"{E(k.Link)}\">{E(k.Link)}</a></dd>");
        sb.AppendLine("</dl></div>");
    }
}
