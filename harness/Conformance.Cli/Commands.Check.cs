using Conformance.Orchestrator;
using Conformance.Orchestrator.Check;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>
    /// conformance check PATH…: every reader of every runtime on a user's files, a verdict and a remedy
    /// per file. Exit 0 when every file loads in .NET intact, 1 when one does not, 2 on bad usage.
    /// </summary>
    public static int Check(string[] paths, string? modelTwin, bool json, bool html, string? outDir, double? timeout)
    {
        if (modelTwin is not null && Catalogue.All.All(c => c.Name != modelTwin || c.IsCheckpoint))
        {
            Console.Error.WriteLine($"error: --model-twin {modelTwin} is not one of the suite's twins: {string.Join(", ", Catalogue.Cases.Select(c => c.Name))}");
            return 2;
        }
        IReadOnlyList<string> items;
        try { items = FileCheck.Expand(paths); }
        catch (FileNotFoundException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        if (items.Count == 0)
        {
            Console.Error.WriteLine($"error: no files in {string.Join(", ", paths)}");
            return 2;
        }
        var repo = Repo();
        var suite = new Suite(repo);
        var options = RunnerOptions.FromEnvironment(Path.Combine(repo.ArtifactsDir, "check"));
        if (timeout is { } t) options = options with { RequestTimeout = TimeSpan.FromSeconds(t) };
        var missing = suite.Runtimes.Where(r => !r.Available).ToList();
        foreach (var r in missing) Console.Error.WriteLine($"note: {r.Id} is missing ({r.MissingReason}); its readers are not run");
        var run = new FileCheck(suite, options, modelTwin).Run(items, line => Console.Error.WriteLine("checking " + line));
        if (json && !html && outDir is null)
            Console.WriteLine(CheckReport.Json(run).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        else
            Console.Write(CheckReport.Markdown(run));
        try
        {
            foreach (var f in CheckReport.Write(run, outDir ?? Path.Combine(repo.ReportsDir, "check"), json, html))
                Console.Error.WriteLine($"wrote {Rel(f)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: could not write the check report: {ReportWriteFailure(e)}");
            return 1;
        }
        Console.Error.WriteLine(CheckReport.Summary(run));
        return run.AllLoad ? 0 : 1;
    }
}
