using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.GpuLeg;

/// <summary>
/// A GPU run made before gpu-check kept its raw replies: its <c>gpu-report.json</c> holds rows that the
/// retired on-device judge (<c>judge.py</c>) decided. Their problems cannot be judged again, but the
/// ledger can: each row's problems are taken as that judge found them, the current ledger is applied
/// by the orchestrator, and every row is labelled with the judge, the machine and the date, so that no
/// reader takes them for the new path's. A new GPU run replaces them.
/// </summary>
public static class RetiredJudgeReport
{
    /// <summary>Whether <paramref name="report"/> is such a report: schema 2 with a <c>gpu_check</c> block that no orchestrator has judged (no <c>judged_by</c>).</summary>
    public static bool Is(JsonNode report) => report["gpu_check"] is JsonObject g && g["judged_by"] is null && report["schema"]?.GetValue<int>() == 2;

    public static RunResult Rejudge(JsonNode report, string source, FailureLedger ledger, DateOnly today)
    {
        var read = ReportJsonReader.Read(report);
        var device = report["gpu_check"]!["device"];
        var gpu = device?["gpu"]?.GetValue<string>() ?? "a simulated device";
        var date = report["generated"]?.GetValue<string>()?.Split('T')[0] ?? "an unknown date";
        var label = $"the retired on-device judge (python judge.py) on {gpu}, {date} ({Path.GetFileName(source)}): problems as it found them, "
                    + "the ledger applied by the orchestrator; no raw replies were kept, so these rows cannot be judged again";
        // Rows made before the library axis name the TorchSharp set bare: today's names (BeforeLibraries).
        var results = read.Results.Select(r => r with { Cell = BeforeLibraries.Upgrade(r.Cell) })
            .Select(r => (Raw(r) is { } raw ? ledger.Apply(raw) : r) with { JudgedBy = label }).ToList();
        var errors = ledger.Check(results, complete: false, today);
        return read with { Results = results, LedgerErrors = errors };
    }

    /// <summary>The row before any ledger: a known failure was a failure with the same problems; null where that cannot be told.</summary>
    private static CellResult? Raw(CellResult r) => r.Outcome switch
    {
        Outcome.KnownFailure or Outcome.Fail when r.Problems.Count > 0 =>
            r with { Outcome = Outcome.Fail, Declared = null, Message = string.Join("; ", r.Problems.Select(p => p.Line)) },
        Outcome.Pass or Outcome.NotApplicable => r with { Declared = null },
        _ => null,
    };
}
