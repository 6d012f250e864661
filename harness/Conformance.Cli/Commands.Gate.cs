using System.Text.Json.Nodes;
using Conformance.Orchestrator.Diagnosis;
using Conformance.Orchestrator.GpuLeg;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Ledger;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>`compare OLD NEW`: the upgrade gate. Exit 1 on a regression (or, with --fail-on-change, on any change).</summary>
    public static int Compare(string oldPath, string newPath, string[] map, string? markdownPath, bool failOnChange, string? htmlUrl = null)
    {
        RunComparison c;
        try
        {
            c = RunComparison.Compare(ReportFile.Load(oldPath), ReportFile.Load(newPath), RunComparison.ParseMap(map), oldPath, newPath);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or ArgumentException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var md = c.Markdown(htmlUrl ?? "compatibility.html");
        Console.Write(md);
        if (markdownPath is not null)
        {
            Conformance.Files.DurableFile.WriteText(markdownPath, md);
            Console.WriteLine($"wrote {Rel(markdownPath)}");
        }
        return c.HasRegressions || (failOnChange && c.HasChanges) ? 1 : 0;
    }

    /// <summary>A shard for merge: a report, or a GPU run judged here first (an archive, or a retired judge's report).</summary>
    private static JsonNode LoadShard(string path)
    {
        if (!GpuReport.IsArchive(path))
        {
            var report = ReportFile.Load(path);
            if (!RetiredJudgeReport.Is(report)) return report;
        }
        var repo = Repo();
        return GpuReport.Judge(path, repo.Root, GpuWorkDir(repo, path), FailureLedger.Load(repo.KnownFailuresFile), DateOnly.FromDateTime(DateTime.UtcNow)).Json;
    }

    private static string GpuWorkDir(Orchestrator.Runtimes.RepoLayout repo, string source) =>
        Path.Combine(repo.ArtifactsDir, "gpu", Path.GetFileName(source).Replace(".tar.gz", "", StringComparison.Ordinal));

    /// <summary>`judge-gpu ARCHIVE`: a GPU run's raw replies judged by the matrix's judge and ledger, as a report (the GPU rows).</summary>
    public static int JudgeGpu(string source, string? outDir)
    {
        var repo = Repo();
        RunResult run;
        JsonObject json;
        try
        {
            (run, json) = GpuReport.Judge(source, repo.Root, GpuWorkDir(repo, source), FailureLedger.Load(repo.KnownFailuresFile), DateOnly.FromDateTime(DateTime.UtcNow));
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        Console.WriteLine($"judged by: {json["gpu_check"]?["judged_by"]}");
        foreach (var r in run.Results.Where(r => r.Outcome == Outcome.Fail))
            Console.WriteLine($"  FAIL {r.Cell.Name}: {Conformance.Protocol.Wire.Truncate(r.Message, 300)}");
        foreach (var e in run.LedgerErrors) Console.WriteLine($"  {e}");
        var dir = outDir ?? Path.Combine(repo.ReportsDir, "gpu");
        try
        {
            foreach (var f in ReportWriter.WriteAll(run, dir, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }))) Console.WriteLine($"wrote {Rel(f)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.WriteLine(run.SummaryLine());
            Console.Error.WriteLine($"error: could not write the GPU report to {Path.GetFullPath(dir)}: {ReportWriteFailure(e)}");
            return 1;
        }
        Console.WriteLine(json["summary"]?["line"]?.GetValue<string>());
        return run.Passed ? 0 : 1;
    }

    /// <summary>`merge SHARD.json…`: one report from sharded runs.</summary>
    public static int Merge(string[] shards, string? outDir)
    {
        JsonObject merged;
        try
        {
            merged = ReportMerge.Merge(shards.Select(p => (p, LoadShard(p))).ToList());
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or InvalidOperationException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var run = ReportJsonReader.Read(merged);
        // Each shard saw only part of the matrix, so the ledger's whole-run rules (entries matching no
        // cell, max_cells, expected problems no cell shows) are checked here, on the union.
        var ledger = FailureLedger.Load(Repo().KnownFailuresFile);
        var complete = merged["complete"]?.GetValue<bool>() == true;
        var fresh = ledger.Check(run.Results, complete, DateOnly.FromDateTime(DateTime.UtcNow))
            .Where(e => !run.LedgerErrors.Contains(e)).ToList();
        if (fresh.Count > 0)
        {
            var errors = merged["ledger_errors"] as JsonArray ?? [];
            foreach (var e in fresh) errors.Add(new JsonObject { ["entry"] = e.EntryId, ["message"] = e.Message });
            merged["ledger_errors"] = errors;
            run = run with { LedgerErrors = [.. run.LedgerErrors, .. fresh] };
            var summary = merged["summary"]!.AsObject();
            summary["line"] = run.SummaryLine();
        }
        var dir = outDir ?? Repo().ReportsDir;
        var line = merged["summary"]?["line"]?.GetValue<string>() ?? "";
        try
        {
            foreach (var f in ReportWriter.WriteAll(run, dir, ReportMerge.Write(merged))) Console.WriteLine($"wrote {Rel(f)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.WriteLine(line);
            Console.Error.WriteLine($"error: could not write the merged reports to {Path.GetFullPath(dir)}: {ReportWriteFailure(e)}");
            return 1;
        }
        Console.WriteLine(line);
        return line.StartsWith("CONFORMANCE SUITE PASSED", StringComparison.Ordinal) ? 0 : 1;
    }

    /// <summary>`doctor`: what this machine has and lacks, a one-line remedy for each problem.</summary>
    public static int Doctor()
    {
        var report = Orchestrator.Diagnosis.Doctor.Examine(Repo());
        Console.Write(report.Text());
        return report.Healthy ? 0 : 1;
    }
}
