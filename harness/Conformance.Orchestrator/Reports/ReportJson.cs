using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Reports;

/// <summary>reports/compatibility.json: the machine-readable report, and what the tests read back.</summary>
public static class ReportJson
{
    public static JsonObject Build(RunResult run)
    {
        var runtimes = new JsonArray();
        foreach (var r in run.Runtimes)
        {
            var listings = new JsonObject();
            foreach (var (c, l) in r.Listings) listings[c] = l?["text"]?.GetValue<string>();
            runtimes.Add(new JsonObject
            {
                ["id"] = r.Runtime.Id,
                ["kind"] = r.Runtime.Kind,
                ["version"] = r.Hello?["version"]?.GetValue<string>() ?? r.Runtime.Version,
                ["device"] = r.Runtime.Device,
                ["status"] = r.Runtime.Available ? "available" : "missing",
                ["where"] = r.Runtime.Where,
                ["reason"] = r.Runtime.MissingReason ?? r.Error,
                ["launch"] = r.Runtime.Launch?.Display(),
                ["hello"] = r.Hello?.DeepClone(),
                ["listings"] = listings,
            });
        }
        var results = new JsonArray();
        foreach (var x in run.Results)
        {
            var tol = Catalogue.All.FirstOrDefault(c => c.Name == x.Cell.Case) is { } spec ? Catalogue.ToleranceFor(spec, x.Cell) : null;
            var row = new JsonObject
            {
                ["cell"] = x.Cell.Name,
                ["case"] = x.Cell.Case,
                ["producer"] = x.Cell.Producer,
                ["consumer"] = x.Cell.Consumer,
                ["route"] = x.Cell.Route,
                ["mode"] = x.Cell.Mode,
                ["outcome"] = x.Outcome.Wire(),
                ["message"] = x.Message,
                ["problems"] = new JsonArray(x.Problems.Select(p => (JsonNode)new JsonObject
                {
                    ["code"] = p.Code, ["subject"] = p.Subject, ["message"] = p.Message, ["measure"] = Finite(p.Measure),
                }).ToArray()),
                ["max_abs_diff"] = Finite(x.Diff?.MaxAbs),
                ["max_rel_diff"] = Finite(x.Diff?.MaxRel),
                ["train_eval_max_abs_diff"] = Finite(x.TrainEvalDiff),
                ["archive_version"] = x.ArchiveVersion,
                ["tolerance"] = tol is null ? null : new JsonObject { ["atol"] = tol.Atol, ["rtol"] = tol.Rtol },
                ["known_failure"] = x.Declared is null ? null : new JsonObject
                {
                    ["id"] = x.Declared.Id, ["reason"] = x.Declared.Reason, ["link"] = x.Declared.Link,
                },
                ["artifact"] = x.Artifact,
                ["seconds"] = Math.Round(x.Seconds, 3),
            };
            if (x.JudgedBy is not null) row["judged_by"] = x.JudgedBy;
            results.Add(row);
        }
        var s = run.Selection;
        return new JsonObject
        {
            ["schema"] = 2,
            ["generated"] = run.Started.ToString("O"),
            ["seconds"] = Math.Round(run.Seconds, 1),
            ["complete"] = s.Complete,
            ["selection"] = new JsonObject
            {
                ["cells"] = s.Cells, ["case"] = s.Case, ["route"] = s.Route, ["runtime"] = s.Runtime, ["mode"] = s.Mode, ["shard"] = s.Shard,
            },
            ["environment"] = Machine.Environment(run.Options),
            ["runtimes"] = runtimes,
            ["results"] = results,
            ["ledger_errors"] = new JsonArray(run.LedgerErrors.Select(k => (JsonNode)new JsonObject
            {
                ["entry"] = k.EntryId, ["message"] = k.Message,
            }).ToArray()),
            ["summary"] = new JsonObject
            {
                ["pass"] = run.Count(Outcome.Pass),
                ["known_failure"] = run.Count(Outcome.KnownFailure),
                ["fail"] = run.Count(Outcome.Fail),
                ["skipped"] = run.Count(Outcome.Skipped),
                ["not_applicable"] = run.Count(Outcome.NotApplicable),
                ["line"] = run.SummaryLine(),
            },
        };
    }

    private static double? Finite(double? d) => d is { } v && double.IsFinite(v) ? v : d is null ? null : double.MaxValue;

    public static string Write(RunResult run) =>
        Build(run).ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
