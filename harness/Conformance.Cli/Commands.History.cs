using System.Text.Json.Nodes;
using Conformance.Orchestrator.Reports;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>
    /// `baseline REPORT`: the compact form of a complete run (reports/baseline.json by default); with
    /// --readme, the README's overview table is rewritten from it. `make baseline` calls it after a
    /// full run on a clean tree.
    /// </summary>
    public static int MakeBaseline(string reportPath, string? outPath, string? commit, string? readme)
    {
        JsonObject baseline;
        try
        {
            baseline = Baseline.From(ReportFile.Load(reportPath), commit, reportPath);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var text = Baseline.Write(baseline);
        if (text.Length > Baseline.MaxBytes)
        {
            Console.Error.WriteLine($"error: the baseline would be {text.Length:N0} bytes, over {Baseline.MaxBytes:N0}: make the compact form smaller before committing it");
            return 1;
        }
        var target = Path.GetFullPath(outPath ?? Path.Combine(Repo().ReportsDir, "baseline.json"));
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            Conformance.Files.DurableFile.WriteText(target, text);
            Console.WriteLine($"wrote {Rel(target)} ({text.Length:N0} bytes, {((JsonArray)baseline["results"]!).Count:N0} cells, commit {commit ?? "unknown"})");
            if (readme is not null)
            {
                var overview = Baseline.Overview(Baseline.Expand(JsonNode.Parse(text)!, target));
                Conformance.Files.DurableFile.WriteText(readme, Baseline.WithOverview(File.ReadAllText(readme), overview));
                Console.WriteLine($"wrote the overview table into {Rel(readme)}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {ReportWriteFailure(e)}");
            return 4;
        }
        return 0;
    }

    /// <summary>`history REPORT…`: history.html and history.md from a series of reports or baselines.</summary>
    public static int History(string[] reports, string? outDir)
    {
        History history;
        try
        {
            history = Orchestrator.Reports.History.Build(reports.Select(p => (p, ReportFile.Load(p))).ToList());
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        var dir = outDir ?? Path.Combine(Repo().ReportsDir, "history");
        var html = Path.Combine(dir, "history.html");
        var md = Path.Combine(dir, "history.md");
        try
        {
            Directory.CreateDirectory(dir);
            Conformance.Files.DurableFile.WriteText(html, history.Html());
            Conformance.Files.DurableFile.WriteText(md, history.Markdown());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: could not write the history to {Path.GetFullPath(dir)}: {ReportWriteFailure(e)}");
            return 4;
        }
        Console.WriteLine($"{history.Runs.Count} runs, {history.Changed.Count} cells changed at least once, {history.Unchanged} never did, {history.Ledger.Count} ledger entries");
        Console.WriteLine($"wrote {Rel(html)}");
        Console.WriteLine($"wrote {Rel(md)}");
        return 0;
    }
}
