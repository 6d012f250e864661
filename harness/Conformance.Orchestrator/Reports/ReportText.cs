using System.Text;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>The console table and reports/compatibility.md.</summary>
public static class ReportText
{
    /// <summary>Plain text tables for the terminal.</summary>
    public static string Console(RunResult run, bool details = true)
    {
        var sb = new StringBuilder();
        if (details)
            foreach (var g in Grid.From(run.Results)) AppendGrid(sb, g);
        AppendOverview(sb, run);
        var notable = run.Results.Where(r => r.Outcome is Outcome.Fail).ToList();
        foreach (var r in notable)
            sb.AppendLine($"FAIL  {r.Cell.Name}: {FirstLine(r.Message)}");
        foreach (var k in run.LedgerErrors)
            sb.AppendLine($"ERROR {k}");
        if (notable.Count > 0 || run.LedgerErrors.Count > 0) sb.AppendLine();
        sb.AppendLine(run.SummaryLine());
        return sb.ToString();
    }

    private static void AppendOverview(StringBuilder sb, RunResult run)
    {
        var o = Overview.From(run.Results);
        var header = new[] { "case" }.Concat(o.Routes).ToArray();
        var rows = o.Rows.Select(r => new[] { r.Case }.Concat(r.Cells).ToArray()).ToList();
        sb.AppendLine("Overview: outcomes of every direction and mode, per case and route");
        AppendTable(sb, header, rows);
        sb.AppendLine();
        var byDirection = Overview.ByDirection(run.Results);
        sb.AppendLine("Overview: outcomes of every case and mode, per direction and route");
        AppendTable(sb, new[] { "producer -> consumer" }.Concat(byDirection.Routes).ToArray(),
            byDirection.Rows.Select(r => new[] { r.Case }.Concat(r.Cells).ToArray()).ToList());
        sb.AppendLine();
        sb.AppendLine("Overview: per route and TorchSharp side (each .NET library), pass / known / FAIL of every case and mode");
        var libraries = LibraryTable.Rows(LibraryTable.Of(run.Results));
        AppendTable(sb, ["route", "TorchSharp side", .. LibraryTable.Directions],
            libraries.Select(r => new[] { r.Route, r.Side }.Concat(r.Counts.Select(c => c.Replace("**", ""))).ToArray()).ToList());
        var declared = run.Results.Where(r => r.Declared is not null && r.Outcome == Outcome.KnownFailure)
            .GroupBy(r => r.Declared!).Select(g => $"  known ({g.Count()} cell{(g.Count() == 1 ? "" : "s")}): {Shorten(g.Key.Reason, 150)}\n    {g.Key.Link}");
        foreach (var d in declared) sb.AppendLine(d);
        sb.AppendLine();
    }

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static void AppendTable(StringBuilder sb, string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => "  " + string.Join(" | ", cells.Select((c, i) => c.PadRight(widths[i])));
        sb.AppendLine(Line(header));
        sb.AppendLine("  " + string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var r in rows) sb.AppendLine(Line(r));
    }

    private static void AppendGrid(StringBuilder sb, Grid g)
    {
        sb.AppendLine($"{g.Case} via {g.Route}");
        var header = new[] { "producer -> consumer" }.Concat(g.Modes).ToArray();
        AppendTable(sb, header, g.Rows.Select(r => new[] { r.Direction }.Concat(r.Cells.Select(Grid.Word)).ToArray()).ToList());
        sb.AppendLine();
    }

    /// <summary>
    /// Who judged the GPU rows (a judged GPU run, or the retired on-device judge's rows, each with the
    /// machine and the date), and every artifact and mode where a CUDA PyTorch does not do what the
    /// CPU ones do (<see cref="DeviceRules"/>), the silent ones first.
    /// </summary>
    private static void AppendDeviceSections(StringBuilder sb, RunResult run)
    {
        var judges = run.Results.Where(r => r.JudgedBy is not null).GroupBy(r => r.JudgedBy!).ToList();
        if (judges.Count > 0)
        {
            sb.AppendLine("## GPU rows: who judged them").AppendLine();
            sb.AppendLine("| cells | judged by |").AppendLine("|---|---|");
            foreach (var g in judges) sb.AppendLine($"| {g.Count()} | {Cell(g.Key)} |");
            sb.AppendLine();
        }
        var differences = DeviceRules.Find(run.Results);
        if (differences.Count == 0) return;
        sb.AppendLine("## Device differences: CPU and CUDA PyTorch disagree").AppendLine();
        sb.AppendLine("Each artifact and load mode where a PyTorch on CUDA does not do what every PyTorch on the CPU does. "
                      + "**silent**: CUDA loads the file with wrong values where the CPU refuses it or reads it right.").AppendLine();
        sb.AppendLine("| artifact (case/route/producer) | mode | CPU | CUDA | | rule |").AppendLine("|---|---|---|---|---|---|");
        foreach (var d in differences)
            sb.AppendLine($"| {d.Case}/{d.Route}/{d.Producer} | {d.Mode} | {string.Join(", ", d.Cpu.Select(c => $"{c.Consumer}: {c.State}"))} | "
                          + $"{string.Join(", ", d.Cuda.Select(c => $"{c.Consumer}: {c.State}"))} | {(d.Silent ? "**silent**" : "")} | {Cell(d.Rule?.Warning ?? "")} |");
        sb.AppendLine();
    }

    public static string Markdown(RunResult run)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# TorchSharp ⇄ PyTorch compatibility report").AppendLine();
        sb.AppendLine($"Generated {run.Started:yyyy-MM-dd HH:mm:ss zzz} in {run.Seconds:0.0} s.").AppendLine();
        sb.AppendLine($"**{run.SummaryLine()}**").AppendLine();
        sb.AppendLine("Legend: `pass =` bit-identical weights and identical outputs; `pass Δx` bit-identical weights, outputs within the case's tolerance, largest absolute difference x; "
                      + "`FAIL` unexpected failure; `known` declared in known-failures.json (reason and link below); `n/a` the runtime lacks the capability; `skip` the runtime is missing.").AppendLine();
        var overview = Overview.From(run.Results);
        sb.AppendLine("## Overview").AppendLine();
        sb.AppendLine("Per route and TorchSharp side: a state-dict route's TorchSharp side runs once per .NET library, PyBridge next to TorchCheckpoints "
                      + "(pass / known / unexpected over every case and mode; TorchSharp → TorchSharp counts what a library reads, from either library's files).").AppendLine();
        sb.Append(LibraryTable.Markdown(LibraryTable.Of(run.Results))).AppendLine();
        sb.AppendLine("Outcomes of every direction and load mode, per case and route.").AppendLine();
        sb.AppendLine("| case | " + string.Join(" | ", overview.Routes) + " |");
        sb.AppendLine("|---|" + string.Concat(overview.Routes.Select(_ => "---|")));
        foreach (var (c, cells) in overview.Rows) sb.AppendLine($"| {c} | " + string.Join(" | ", cells) + " |");
        sb.AppendLine();
        var byDirection = Overview.ByDirection(run.Results);
        sb.AppendLine("Outcomes of every case and load mode, per direction and route.").AppendLine();
        sb.AppendLine("| producer → consumer | " + string.Join(" | ", byDirection.Routes) + " |");
        sb.AppendLine("|---|" + string.Concat(byDirection.Routes.Select(_ => "---|")));
        foreach (var (c, cells) in byDirection.Rows) sb.AppendLine($"| {c.Replace(" -> ", " → ")} | " + string.Join(" | ", cells) + " |");
        sb.AppendLine();
        sb.Append(LibraryRemedy.Markdown(run.Results));
        AppendDeviceSections(sb, run);
        sb.AppendLine("## Runtimes").AppendLine();
        sb.AppendLine("| id | kind | version | device | where | status |").AppendLine("|---|---|---|---|---|---|");
        foreach (var r in run.Runtimes)
        {
            var version = r.Hello?["version"]?.GetValue<string>() ?? r.Runtime.Version;
            var status = r.Runtime.Available ? (r.Error is null ? "available" : $"error: {Cell(r.Error)}") : $"missing: {Cell(r.Runtime.MissingReason ?? "")}";
            sb.AppendLine($"| {r.Runtime.Id} | {r.Runtime.Kind} | {version} | {r.Runtime.Device} | {Cell(r.Runtime.Where)} | {status} |");
        }
        // Runtimes whose cells are planned and skipped (a device this machine lacks: torchsharp-*-cuda) are rows too.
        var listed = run.Runtimes.Select(r => r.Runtime.Id).ToHashSet();
        foreach (var (id, first) in run.Results.Where(r => r.Outcome == Outcome.Skipped)
                     .SelectMany(r => new[] { (Id: r.Cell.Producer, Result: r), (Id: r.Cell.Consumer, Result: r) })
                     .Where(x => !x.Id.Contains('@') && !listed.Contains(x.Id))
                     .GroupBy(x => x.Id).Select(g => (g.Key, g.First().Result)))
        {
            var kind = id.Split('-')[0];
            sb.AppendLine($"| {id} | {kind} | {Runtime.WithoutDevice(id).Split('-').Last()} | {Runtime.DeviceOf(id)} | — | skipped: {Cell(first.Message)} |");
        }
        sb.AppendLine();
        foreach (var g in Grid.From(run.Results))
        {
            var tol = Catalogue.Cases.FirstOrDefault(c => c.Name == g.Case)?.Tolerance;
            sb.AppendLine($"## {g.Case} via {g.Route}").AppendLine();
            if (tol is not null)
            {
                var onDevice = g.Rows.Any(r => Runtime.IsAccelerator(Runtime.DeviceOf(r.Producer)) || Runtime.IsAccelerator(Runtime.DeviceOf(r.Consumer)));
                var gpu = Catalogue.ToleranceFor(Catalogue.Case(g.Case), "cuda", Runtime.Cpu);
                sb.AppendLine(onDevice ? $"Output tolerance: {tol} (CPU ↔ CPU); {gpu} where a side ran on a GPU (rows naming -cuda)." : $"Output tolerance: {tol}.").AppendLine();
            }
            sb.AppendLine("| producer → consumer | " + string.Join(" | ", g.Modes) + " |");
            sb.AppendLine("|---|" + string.Concat(g.Modes.Select(_ => "---|")));
            foreach (var row in g.Rows)
                sb.AppendLine($"| {row.Producer} → {row.Consumer} | " + string.Join(" | ", row.Cells.Select(c => Symbol(c) + " " + Grid.Word(c))) + " |");
            sb.AppendLine();
        }
        var trainMode = Catalogue.Cases.Where(c => c.TrainModeMatters)
            .Select(c => (Case: c.Name, Diffs: run.Results.Where(r => r.Cell.Case == c.Name && r.TrainEvalDiff is not null).Select(r => r.TrainEvalDiff!.Value).ToList()))
            .Where(x => x.Diffs.Count > 0).ToList();
        if (trainMode.Count > 0)
        {
            sb.AppendLine("## eval() took effect").AppendLine();
            sb.AppendLine("Models with dropout or batch statistics: each consumer also ran a train-mode forward pass on the eval input. "
                          + "A difference from its eval-mode outputs shows the mode switch took effect (a zero fails the cell).").AppendLine();
            sb.AppendLine("| case | consumer cells | smallest max \\|train − eval\\| | largest |").AppendLine("|---|---|---|---|");
            foreach (var (c, diffs) in trainMode) sb.AppendLine($"| {c} | {diffs.Count} | {diffs.Min():g3} | {diffs.Max():g3} |");
            sb.AppendLine();
        }
        var failures = run.Results.Where(r => r.Outcome == Outcome.Fail).ToList();
        if (failures.Count > 0)
        {
            sb.AppendLine("## Unexpected failures").AppendLine();
            sb.AppendLine("| cell | message |").AppendLine("|---|---|");
            foreach (var r in failures) sb.AppendLine($"| `{r.Cell.Name}` | {Cell(r.Message)} |");
            sb.AppendLine();
        }
        var known = run.Results.Where(r => r.Outcome == Outcome.KnownFailure).GroupBy(r => r.Declared!).ToList();
        if (known.Count > 0)
        {
            sb.AppendLine("## Known incompatibilities (known-failures.json)").AppendLine();
            sb.AppendLine("| cells | entry | reason | example message |").AppendLine("|---|---|---|---|");
            foreach (var g in known)
                sb.AppendLine($"| {g.Count()} | `{g.Key.Id}` | {Cell(g.Key.Reason)} [link]({g.Key.Link}) | `{g.First().Cell.Name}`: {Cell(g.First().Message)} |");
            sb.AppendLine();
        }
        var other = run.Results.Where(r => r.Outcome is Outcome.NotApplicable or Outcome.Skipped).GroupBy(r => (r.Outcome, Message: Scrub(r.Message))).ToList();
        if (other.Count > 0)
        {
            sb.AppendLine("## Not applicable and skipped").AppendLine();
            sb.AppendLine("| cells | outcome | reason | example |").AppendLine("|---|---|---|---|");
            foreach (var g in other) sb.AppendLine($"| {g.Count()} | {g.Key.Outcome.Wire()} | {Cell(g.Key.Message)} | `{g.First().Cell.Name}` |");
            sb.AppendLine();
        }
        if (run.LedgerErrors.Count > 0)
        {
            sb.AppendLine("## Ledger errors (known-failures.json)").AppendLine();
            foreach (var k in run.LedgerErrors) sb.AppendLine($"- `{k.EntryId}`: {k.Message}");
            sb.AppendLine();
        }
        sb.AppendLine("## Listings (the seed's state_dict and optimizer printout, per runtime)").AppendLine();
        foreach (var r in run.Runtimes)
        foreach (var (c, l) in r.Listings)
        {
            sb.AppendLine($"<details><summary>{r.Runtime.Id}: {c}</summary>").AppendLine();
            sb.AppendLine("```").AppendLine(l?["text"]?.GetValue<string>() ?? "(no listing)").AppendLine("```").AppendLine("</details>").AppendLine();
        }
        return sb.ToString();
    }

    public static string Symbol(CellResult? r) => r?.Outcome switch
    {
        Outcome.Pass => "✅",
        Outcome.Fail => "❌",
        Outcome.KnownFailure => "⚠️",
        Outcome.NotApplicable => "➖",
        Outcome.Skipped => "⏭️",
        _ => "",
    };

    internal static string FirstLine(string s) => s.Split('\n', 2)[0];

    // Groups messages that differ only in an artifact path.
    private static string Scrub(string s) => System.Text.RegularExpressions.Regex.Replace(FirstLine(s), @"/\S+/artifacts/\S+", "<artifact>");

    private static string Cell(string s) => FirstLine(s).Replace("|", "\\|");
}
