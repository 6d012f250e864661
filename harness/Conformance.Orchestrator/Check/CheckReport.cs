using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Files;

namespace Conformance.Orchestrator.Check;

/// <summary>check.md (also the console's text), check.json and check.html of a <see cref="CheckRun"/>.</summary>
public static class CheckReport
{
    private const int MaxTensorRows = 40;

    public static string Summary(CheckRun run)
    {
        int Count(CheckOutcome o) => run.Files.Count(f => f.Verdict.Outcome == o);
        var others = new List<string>();
        if (Count(CheckOutcome.DoesNotLoad) is > 0 and var bad) others.Add($"{bad} do{(bad == 1 ? "es" : "")} not");
        if (Count(CheckOutcome.NotAModel) is > 0 and var not) others.Add($"{not} {(not == 1 ? "is" : "are")} not a model file");
        if (Count(CheckOutcome.IoError) is > 0 and var io) others.Add($"{io} could not be read");
        if (Count(CheckOutcome.TwinFails) is > 0 and var twin) others.Add($"{twin} not into the twin (--model-twin)");
        return $"{run.Files.Count(f => f.Verdict.LoadsInDotNet)} of {run.Files.Count} file(s) load in .NET{(others.Count > 0 ? "; " + string.Join(", ", others) : "")} (exit {run.ExitCode}; {run.Elapsed.TotalSeconds:0.0} s)";
    }

    public static string Markdown(CheckRun run)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Will it load in .NET? `conformance check`").AppendLine();
        // The runtimes that answered (--dotnet asks no PyTorch), else every available one.
        var asked = AllFiles(run.Files).SelectMany(f => f.Readers.Select(r => r.Runtime).Concat(f.Twin.Select(t => t.Runtime))).ToHashSet();
        var shown = run.Runtimes.Where(r => r.Available && (asked.Count == 0 || asked.Contains(r.Id))).Select(r => r.Id);
        sb.AppendLine($"**{Summary(run)}** · runtimes: {string.Join(", ", shown)}").AppendLine();
        foreach (var f in run.Files) File(sb, f, 2);
        return sb.ToString();
    }

    private static IEnumerable<CheckedFile> AllFiles(IEnumerable<CheckedFile> files) => files.SelectMany(f => AllFiles(f.Parts).Prepend(f));

    private static void File(StringBuilder sb, CheckedFile f, int level)
    {
        var h = new string('#', level);
        sb.AppendLine($"{h} `{f.Path}`").AppendLine();
        sb.AppendLine($"**{f.Verdict.Line}**  ").AppendLine($"Remedy: {f.Verdict.Remedy}").AppendLine();
        foreach (var w in f.Verdict.DeviceWarnings) sb.AppendLine(w).AppendLine();
        var inv = f.Inventory;
        if (inv is not null)
        {
            var facts = new List<string> { $"format **{f.Format}**" };
            if (inv["bytes"] is { } bytes) facts.Add($"{bytes.GetValue<long>():N0} bytes");
            if (inv["records"] is JsonObject rec && rec.Count > 0) facts.Add("records " + string.Join(", ", rec.Select(kv => $"{kv.Key}={kv.Value}")));
            if (inv["deflated_count"]?.GetValue<int>() is > 0 and var d) facts.Add($"{d} deflated entries");
            if (inv["metadata"] is JsonObject meta) facts.Add("__metadata__ " + meta.ToJsonString());
            if (inv["shards"] is JsonArray shards) facts.Add($"{shards.Count} shard(s)");
            if (f.ReferenceRuntime is not null) facts.Add($"inventory read by {f.ReferenceRuntime}");
            sb.AppendLine("Inventory: " + string.Join(" · ", facts)).AppendLine();
            var globals = inv["globals"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
            if (globals.Count > 0)
                sb.AppendLine("Globals the pickle asks for: " + string.Join(", ", globals.Select(g =>
                    $"`{g["name"]}`{(g["allowed"]!.GetValue<bool>() ? "" : g["known_safe"]?.GetValue<bool>() == true ? " (known, not in the codec's allowlist)" : " **(outside the allowlist)**")}"))).AppendLine();
            if (inv["inventory_error"] is { } err) sb.AppendLine($"Inventory incomplete: {err}").AppendLine();
            foreach (var p in inv["index_problems"]?.AsArray() ?? []) sb.AppendLine($"- index: {p}");
            Tensors(sb, inv);
            var others = inv["others"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
            if (others.Count > 0)
            {
                sb.AppendLine("Other entries: " + string.Join(", ", others.Take(12).Select(o => $"`{o["key"]}` = {Verdicts.Trim(o["value"]!.GetValue<string>(), 60)}")) + (others.Count > 12 ? $", … ({others.Count} in all)" : "")).AppendLine();
            }
        }
        if (f.Readers.Count > 0)
        {
            sb.AppendLine("| runtime | reader | result |").AppendLine("|---|---|---|");
            foreach (var r in f.Readers)
                sb.AppendLine($"| {r.Runtime} | {r.Reader} | {Icon(r.Status)} {Cell(Verdicts.Trim(r.Message, 220))} |");
            sb.AppendLine();
        }
        if (f.Twin.Count > 0)
        {
            sb.AppendLine($"**{f.Verdict.TwinLine}**").AppendLine();
            sb.AppendLine("| runtime | load into the twin | eval outputs | values |").AppendLine("|---|---|---|---|");
            foreach (var t in f.Twin) sb.AppendLine($"| {t.Runtime} | {t.Status} | {Cell(t.Message)} | {Values(t)} |");
            sb.AppendLine();
        }
        foreach (var p in f.Parts) File(sb, p, level + 1);
    }

    private static void Tensors(StringBuilder sb, JsonObject inv)
    {
        var tensors = inv["tensors"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
        if (tensors.Count == 0) return;
        var storage = (inv["storage"]?.AsArray().OfType<JsonObject>() ?? []).GroupBy(s => s["key"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.First());
        var shared = storage.Values.Where(s => s["storage"] is not null).GroupBy(s => s["storage"]!.GetValue<int>()).Where(g => g.Count() > 1).ToList();
        var dtypes = tensors.GroupBy(t => t["dtype"]!.GetValue<string>()).Select(g => $"{g.Count()} {g.Key}");
        sb.AppendLine($"{tensors.Count} tensors ({string.Join(", ", dtypes)}){(shared.Count > 0 ? $"; {shared.Count} storage(s) shared by several tensors (views or tied weights)" : "")}").AppendLine();
        sb.AppendLine("| key | dtype | shape | sha256 | storage | offset | location |").AppendLine("|---|---|---|---|---|---|---|");
        foreach (var t in tensors.Take(MaxTensorRows))
        {
            var key = t["key"]!.GetValue<string>();
            storage.TryGetValue(key, out var s);
            var view = s is null ? "" : $"{s["storage"]}{(s["contiguous"]?.GetValue<bool>() == false ? " (strided)" : "")}";
            sb.AppendLine($"| `{key}` | {t["dtype"]}{(t["qscheme"] is { } q ? $" ({q})" : "")} | [{string.Join(", ", t["shape"]!.AsArray().Select(d => d!.ToString()))}] | {t["sha256"]!.GetValue<string>()[..12]} | {view} | {s?["offset"]} | {s?["location"]} |");
        }
        if (tensors.Count > MaxTensorRows) sb.AppendLine($"| … {tensors.Count - MaxTensorRows} more in check.json | | | | | | |");
        sb.AppendLine();
    }

    private const int ShownValues = 6;

    /// <summary>The first eval outputs, as a user compares them with their own numbers (all of them in check.json).</summary>
    private static string Values(TwinResult t) => t.Values is not { } v ? "" :
        $"[{string.Join(", ", t.Shape ?? [])}] {string.Join(", ", v.Take(ShownValues).Select(x => x.ToString("g6", System.Globalization.CultureInfo.InvariantCulture)))}{(v.Length > ShownValues ? $", … ({v.Length})" : "")}";

    private static string Icon(string status) => status switch
    {
        "identical" => "✅",
        "read" => "☑️",
        "differs" => "❌ differs:",
        "failed" => "❌ fails:",
        _ => "➖",
    };

    private static string Cell(string s) => s.Replace("|", "\\|").Replace("\n", " ");

    public static JsonObject Json(CheckRun run)
    {
        JsonObject One(CheckedFile f) => new()
        {
            ["path"] = f.Path,
            ["format"] = f.Format,
            ["loads_in_dotnet"] = f.Verdict.LoadsInDotNet,
            ["outcome"] = f.Verdict.Outcome.ToString(),
            ["exit_code"] = (int)f.Verdict.Outcome,
            ["verdict"] = f.Verdict.Line,
            ["remedy"] = f.Verdict.Remedy,
            ["twin_verdict"] = f.Verdict.TwinLine,
            ["device_warnings"] = new JsonArray(f.Verdict.DeviceWarnings.Select(w => (JsonNode)w).ToArray()),
            ["reference_runtime"] = f.ReferenceRuntime,
            ["inventory"] = f.Inventory?.DeepClone(),
            ["readers"] = new JsonArray(f.Readers.Select(r => (JsonNode)new JsonObject
            {
                ["runtime"] = r.Runtime, ["reader"] = r.Reader, ["status"] = r.Status, ["message"] = r.Message, ["tensors"] = r.Tensors,
            }).ToArray()),
            ["model_twin"] = new JsonArray(f.Twin.Select(t => (JsonNode)new JsonObject
            {
                ["runtime"] = t.Runtime, ["status"] = t.Status, ["message"] = t.Message, ["max_abs_diff"] = t.MaxAbsDiff,
                ["shape"] = t.Shape is null ? null : new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["values"] = t.Values is null ? null : new JsonArray(t.Values.Select(x => (JsonNode)(double.IsFinite(x) ? x : x.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray()),
            }).ToArray()),
            ["parts"] = new JsonArray(f.Parts.Select(p => (JsonNode)One(p)).ToArray()),
        };
        return new JsonObject
        {
            ["schema"] = "torch-conformance-check/1",
            ["started"] = run.Started.ToString("o"),
            ["elapsed_s"] = Math.Round(run.Elapsed.TotalSeconds, 1),
            ["summary"] = Summary(run),
            ["exit_code"] = run.ExitCode,
            ["runtimes"] = new JsonArray(run.Runtimes.Select(r => (JsonNode)new JsonObject { ["id"] = r.Id, ["available"] = r.Available, ["where"] = r.Where }).ToArray()),
            ["files"] = new JsonArray(run.Files.Select(f => (JsonNode)One(f)).ToArray()),
        };
    }

    /// <summary>The Markdown as a self-contained page: tables coloured by result.</summary>
    public static string Html(CheckRun run)
    {
        var sb = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>conformance check</title><style>"
            + "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
            + "th{background:#f4f4f4}.ok{background:#d8f5d0}.bad{background:#f9c9c9}.warn{background:#fbe8b0}code{background:#f4f4f4}</style></head><body>\n");
        bool inTable = false;
        foreach (var line in Markdown(run).Split('\n'))
        {
            if (line.StartsWith('|'))
            {
                if (line.StartsWith("|---", StringComparison.Ordinal)) continue;
                var cells = line.Trim('|').Split(" | ");
                var cls = line.Contains('❌') ? " class=\"bad\"" : line.Contains('✅') ? " class=\"ok\"" : "";
                if (!inTable) { sb.Append("<table>"); inTable = true; sb.Append("<tr>").Append(string.Concat(cells.Select(c => $"<th>{Inline(c.Trim())}</th>"))).AppendLine("</tr>"); continue; }
                sb.Append($"<tr{cls}>").Append(string.Concat(cells.Select(c => $"<td>{Inline(c.Trim())}</td>"))).AppendLine("</tr>");
                continue;
            }
            if (inTable) { sb.AppendLine("</table>"); inTable = false; }
            if (line.StartsWith('#'))
            {
                int n = line.TakeWhile(c => c == '#').Count();
                sb.AppendLine($"<h{n}>{Inline(line[n..].Trim())}</h{n}>");
            }
            else if (line.StartsWith("**✓", StringComparison.Ordinal) || line.StartsWith("**✗", StringComparison.Ordinal) || line.StartsWith("**⚠", StringComparison.Ordinal))
                sb.AppendLine($"<p class=\"{(line.StartsWith("**✓", StringComparison.Ordinal) ? "ok" : line.StartsWith("**⚠", StringComparison.Ordinal) ? "warn" : "bad")}\">{Inline(line.Trim())}</p>");
            else if (line.Trim().Length > 0) sb.AppendLine($"<p>{Inline(line.Trim())}</p>");
        }
        if (inTable) sb.AppendLine("</table>");
        return sb.Append("</body></html>\n").ToString();
    }

    private static string Inline(string s)
    {
        var e = WebUtility.HtmlEncode(s).Replace("\\|", "|");
        e = System.Text.RegularExpressions.Regex.Replace(e, @"\*\*(.+?)\*\*", "<b>$1</b>");
        return System.Text.RegularExpressions.Regex.Replace(e, "`(.+?)`", "<code>$1</code>");
    }

    /// <summary>Writes check.md always, check.json and check.html when asked; returns the paths written.</summary>
    public static IReadOnlyList<string> Write(CheckRun run, string dir, bool json, bool html)
    {
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        void Put(string name, string text)
        {
            var path = Path.Combine(dir, name);
            DurableFile.WriteText(path, text);
            written.Add(path);
        }
        Put("check.md", Markdown(run));
        if (json) Put("check.json", Json(run).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (html) Put("check.html", Html(run));
        return written;
    }
}
