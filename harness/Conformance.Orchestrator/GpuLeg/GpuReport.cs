using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Ledger;

namespace Conformance.Orchestrator.GpuLeg;

/// <summary>
/// A GPU run as a schema-2 report (the GPU rows of the compatibility report): a gpu-check archive
/// judged by <see cref="GpuRunJudge"/>, or a retired on-device judge's report with the ledger applied
/// again (<see cref="RetiredJudgeReport"/>). <c>conformance judge-gpu</c> writes it; <c>merge</c> takes
/// either source in place of a report.
/// </summary>
public static class GpuReport
{
    /// <summary>Whether <paramref name="path"/> names a GPU run that must be judged before it is a report (an archive).</summary>
    public static bool IsArchive(string path) => path.EndsWith(".tar.gz", StringComparison.Ordinal) || path.EndsWith(".tgz", StringComparison.Ordinal);

    /// <param name="workDir">Where an archive is unpacked (emptied first).</param>
    /// <exception cref="InvalidDataException">Neither a gpu-check archive nor a GPU report, naming the file.</exception>
    public static (RunResult Run, JsonObject Json) Judge(string source, string repoRoot, string workDir, FailureLedger ledger, DateOnly today)
    {
        if (IsArchive(source))
        {
            var archive = GpuArchive.Open(source, workDir);
            var run = GpuRunJudge.Judge(archive, repoRoot, ledger, today);
            var json = ReportJson.Build(run);
            var r = archive.Run;
            json["environment"] = new JsonObject
            {
                ["machine"] = r["machine"]?.DeepClone(),
                ["threads"] = r["runtime"]?["hello"]?["threads"]?.DeepClone(),
                ["timeout_seconds"] = null,
                ["start_timeout_seconds"] = null,
                ["device"] = r["device"]?.DeepClone(),
            };
            json["gpu_check"] = new JsonObject
            {
                ["judged_by"] = GpuRunJudge.JudgedBy(archive),
                ["archive"] = Path.GetFullPath(source),
                ["archive_sha256"] = archive.Sha256,
                ["device"] = r["device"]?.DeepClone(),
                ["simulated"] = r["simulated"]?.DeepClone(),
                ["finished"] = r["finished"]?.DeepClone(),
                ["timing"] = r["timing"]?.DeepClone(),
                ["processes"] = r["processes"]?.DeepClone(),
            };
            return (run, json);
        }
        JsonNode report;
        try { report = JsonNode.Parse(File.ReadAllText(source)) ?? throw new InvalidDataException($"{source}: empty"); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{source}: not JSON: {e.Message}", e); }
        catch (FileNotFoundException) { throw new InvalidDataException($"{source}: no such file"); }
        if (!RetiredJudgeReport.Is(report))
            throw new InvalidDataException($"{source}: neither a gpu-check archive (.tar.gz) nor a GPU report (a schema-2 report with a \"gpu_check\" block)");
        var rejudged = RetiredJudgeReport.Rejudge(report, source, ledger, today);
        var rebuilt = ReportJson.Build(rejudged);
        rebuilt["environment"] = report["environment"]?.DeepClone();
        rebuilt["gpu_check"] = report["gpu_check"]!.DeepClone();
        rebuilt["gpu_check"]!["judged_by"] = rejudged.Results.FirstOrDefault()?.JudgedBy;
        rebuilt["runtimes"] = report["runtimes"]?.DeepClone();
        rebuilt["complete"] = false;
        return (rejudged, rebuilt);
    }
}
