using System.Text.Json.Nodes;
using Conformance.Orchestrator.Diagnosis;
using Conformance.Orchestrator.Reports;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>`compare OLD NEW`: the upgrade gate. Exit 1 on a regression (or, with --fail-on-change, on any change).</summary>
    public static int Compare(string oldPath, string newPath, string[] map, string? markdownPath, bool failOnChange)
    {
        RunComparison c;
        try
        {
            c = RunComparison.Compare(RunComparison.Load(oldPath), RunComparison.Load(newPath), RunComparison.ParseMap(map), oldPath, newPath);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or ArgumentException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var md = c.Markdown();
        Console.Write(md);
        if (markdownPath is not null)
        {
            Conformance.Protocol.DurableFile.WriteText(markdownPath, md);
            Console.WriteLine($"wrote {Rel(markdownPath)}");
        }
        return c.HasRegressions || (failOnChange && c.HasChanges) ? 1 : 0;
    }

    /// <summary>`merge SHARD.json…`: one report from sharded runs.</summary>
    public static int Merge(string[] shards, string? outDir)
    {
        JsonObject merged;
        try
        {
            merged = ReportMerge.Merge(shards.Select(p => (p, RunComparison.Load(p))).ToList());
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or InvalidOperationException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var run = ReportJsonReader.Read(merged);
        // Each shard saw only part of the matrix, so the ledger's whole-run rules (entries matching no
        // cell, max_cells, expected problems no cell shows) are checked here, on the union.
        var ledger = Orchestrator.Ledger.Ledger.Load(Repo().KnownFailuresFile);
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
