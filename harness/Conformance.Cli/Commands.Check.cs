using Conformance.Orchestrator;
using Conformance.Orchestrator.Check;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>
    /// conformance check PATH…: every reader of every runtime on a user's files, a verdict and a remedy
    /// per file. Exit codes (<see cref="CheckOutcome"/>): 0 every file loads in .NET, 1 a model file does not,
    /// 2 bad usage, 3 a file is not a model file (an optimizer state, a single tensor, empty, not a torch
    /// format), 4 an I/O error (a file cannot be read, the report cannot be written), 5 a file loads but not
    /// into --model-twin (or its outputs differ). Works from any folder:
    /// paths are the user's, relative to where they stand; nothing is written without --out.
    /// </summary>
    public static int Check(string[] paths, string? modelTwin, bool json, bool html, string? outDir, double? timeout, string? input = null, bool dotnet = false)
    {
        if (dotnet && modelTwin is not null)
        {
            Console.Error.WriteLine("error: --model-twin compares with PyTorch's outputs; --dotnet runs no PyTorch");
            return CheckOutcomes.Usage;
        }
        if (input is not null && modelTwin is null)
        {
            Console.Error.WriteLine("error: --input is the twin's eval input: give --model-twin NAME too");
            return CheckOutcomes.Usage;
        }
        var inputFile = input is null or "ones" or "zeros" || System.Text.RegularExpressions.Regex.IsMatch(input, "^seed:[0-9]+$") ? null : input;
        if (inputFile is not null && !File.Exists(inputFile))
        {
            Console.Error.WriteLine($"error: --input {input}: expected ones, zeros, seed:N or a tensor file saved with torch.save, and there is no file {input}");
            return CheckOutcomes.Usage;
        }
        if (modelTwin is not null && Catalogue.All.All(c => c.Name != modelTwin || c.IsCheckpoint))
        {
            Console.Error.WriteLine($"error: --model-twin {modelTwin} is not one of the suite's twins: {string.Join(", ", Catalogue.Cases.Select(c => c.Name))}");
            return CheckOutcomes.Usage;
        }
        if (html && outDir is null)
        {
            Console.Error.WriteLine("error: --html writes check.html: give the folder with --out DIR");
            return CheckOutcomes.Usage;
        }
        IReadOnlyList<CheckItem> items;
        try { items = FileCheck.Expand(paths); }
        catch (FileNotFoundException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return CheckOutcomes.Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: cannot list {string.Join(", ", paths)}: {(e is UnauthorizedAccessException ? "permission denied" : e.Message)}");
            return (int)CheckOutcome.IoError;
        }
        if (items.Count == 0)
        {
            Console.Error.WriteLine($"error: no files in {string.Join(", ", paths)}");
            return CheckOutcomes.Usage;
        }
        RepoLayout repo;
        try { repo = Repo(); }
        catch (DirectoryNotFoundException)
        {
            Console.Error.WriteLine($"error: cannot find the conformance checkout (its runtimes and workers): this conformance.dll ({AppContext.BaseDirectory}) is not inside one; set CONFORMANCE_REPO to the checkout, or run `make install` there");
            return (int)CheckOutcome.IoError;
        }
        var suite = new Suite(repo);
        // The copies the rootfs runtimes read (they see the checkout, not the user's folder): removed after the run.
        var staging = Path.Combine(repo.ArtifactsDir, "check", $"run-{Environment.ProcessId}");
        var options = RunnerOptions.FromEnvironment(staging);
        if (timeout is { } t) options = options with { RequestTimeout = TimeSpan.FromSeconds(t) };
        foreach (var r in suite.Runtimes.Where(r => !r.Available && !(dotnet && r.Kind == RuntimeKinds.PyTorch))) Console.Error.WriteLine($"note: {r.Id} is missing ({r.MissingReason}); its readers are not run");
        CheckRun run;
        try
        {
            if (inputFile is not null)
            {
                // The input file, like the checked files, where the rootfs runtimes see it.
                Directory.CreateDirectory(staging);
                var staged = Path.Combine(staging, "input-" + Path.GetFileName(inputFile));
                File.Copy(inputFile, staged, overwrite: true);
                input = "file:" + staged;
            }
            run = new FileCheck(suite, options, modelTwin, input, dotnet).Run(items, line => Console.Error.WriteLine("checking " + line));
        }
        finally
        {
            try { if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"note: could not remove the staged copies in {staging}: {e.Message}"); }
        }
        if (json && outDir is null)
            Console.WriteLine(CheckReport.Json(run).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        else
            Console.Write(CheckReport.Markdown(run));
        if (outDir is not null)
        {
            try
            {
                foreach (var f in CheckReport.Write(run, Path.GetFullPath(outDir), json, html))
                    Console.Error.WriteLine($"wrote {Rel(f)}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: could not write the check report: {ReportWriteFailure(e)}");
                return (int)CheckOutcome.IoError;
            }
        }
        Console.Error.WriteLine(CheckReport.Summary(run));
        return run.ExitCode;
    }
}
