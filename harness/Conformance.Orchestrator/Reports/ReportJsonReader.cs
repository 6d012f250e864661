using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>Reads a schema-2 report back into a <see cref="RunResult"/>, so merged shards render as Markdown and HTML too.</summary>
public static class ReportJsonReader
{
    public static RunResult Read(JsonNode report)
    {
        static string? S(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        static double? D(JsonNode? n) => n is JsonValue v && v.TryGetValue(out double d) ? d : null;
        var runtimes = (report["runtimes"]?.AsArray() ?? []).Select(r =>
        {
            var id = S(r!["id"])!;
            var available = S(r["status"]) == "available";
            var rt = new Runtimes.Runtime(id, S(r["kind"]) ?? "", S(r["version"]) ?? "", S(r["device"]) ?? "cpu",
                available ? new Runtimes.Launch(S(r["launch"]) ?? "(from a report)") : null, available ? null : S(r["reason"]) ?? "missing", S(r["where"]) ?? "");
            var listings = (r["listings"] as JsonObject ?? []).ToDictionary(kv => kv.Key, kv => (JsonNode?)new JsonObject { ["text"] = S(kv.Value) });
            return new RuntimeReport(rt, r["hello"]?.DeepClone(), listings, available ? S(r["reason"]) : null);
        }).ToList();
        var results = (report["results"]?.AsArray() ?? []).Select(r =>
        {
            var kf = r!["known_failure"];
            var declared = kf is null ? null : new Ledger.LedgerEntry(S(kf["id"]) ?? "", [], [], S(kf["reason"]) ?? "", S(kf["link"]) ?? "", default, null, 0);
            var abs = D(r["max_abs_diff"]);
            var tol = r["tolerance"] is JsonObject t ? new Tolerance(D(t["atol"]) ?? 0, D(t["rtol"]) ?? 0) : null;
            var diff = abs is { } a ? new Judgement.OutputDiff(a, D(r["max_rel_diff"]) ?? 0, 0, tol is null || a <= tol.Atol) : null;
            return new CellResult(Cell.Parse(S(r["cell"])!), Outcomes.Parse(S(r["outcome"])!), S(r["message"]) ?? "", diff, declared, S(r["artifact"]), D(r["seconds"]) ?? 0)
            {
                Problems = (r["problems"]?.AsArray() ?? []).Select(p => new Conformance.Orchestrator.Vocabulary.Problem(S(p!["code"]) ?? "", S(p["subject"]) ?? "", S(p["message"]) ?? "") { Measure = D(p["measure"]) }).ToList(),
                TrainEvalDiff = D(r["train_eval_max_abs_diff"]),
                ArchiveVersion = S(r["archive_version"]),
                JudgedBy = S(r["judged_by"]),
            };
        }).ToList();
        var errors = (report["ledger_errors"]?.AsArray() ?? []).Select(e => new Ledger.LedgerError(S(e!["entry"]) ?? "", S(e["message"]) ?? "")).ToList();
        var sel = report["selection"];
        return new RunResult(runtimes, results, errors, DateTimeOffset.TryParse(S(report["generated"]), out var g) ? g : default, D(report["seconds"]) ?? 0)
        {
            Selection = new Selection(S(sel?["cells"]), S(sel?["case"]), S(sel?["route"]), S(sel?["runtime"]), S(sel?["mode"]), S(sel?["shard"])),
        };
    }
}
