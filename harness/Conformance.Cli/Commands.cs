using Conformance.Orchestrator;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Cli;

/// <summary>What each command does: call the orchestrator, print, choose the exit code.</summary>
public static partial class Commands
{
    /// <summary>The checkout the user stands in; from any other folder, the one this CLI was built in (or CONFORMANCE_REPO).</summary>
    private static RepoLayout Repo()
    {
        try { return RepoLayout.Find(Directory.GetCurrentDirectory()); }
        catch (DirectoryNotFoundException) { return RepoLayout.Find(); }
    }

    private static string Rel(string path) => Path.GetRelativePath(Directory.GetCurrentDirectory(), path);

    public static int Run(Selection selection, string? outDir, double? timeout, int? threads, bool details, string? artifactsDir = null)
    {
        try { selection.Validate(); }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        var repo = Repo();
        var suite = new Suite(repo);
        var options = RunnerOptions.FromEnvironment(Path.GetFullPath(artifactsDir ?? Path.Combine(repo.ArtifactsDir, "report")));
        if (timeout is { } t) options = options with { RequestTimeout = TimeSpan.FromSeconds(t) };
        if (threads is { } n) options = options with { Threads = n };
        outDir ??= repo.ReportsDir;

        Console.WriteLine("Runtimes:");
        foreach (var r in suite.Runtimes)
            Console.WriteLine($"  {r.Id,-20} {(r.Available ? r.Where : "MISSING: " + r.MissingReason)}");
        var cells = selection.Apply(suite.Cells);
        if (cells.Count == 0)
        {
            Console.Error.WriteLine($"error: the selection matches none of the {suite.Cells.Count} cells (cell names look like {suite.Cells.FirstOrDefault()?.Name})");
            return 2;
        }
        Console.WriteLine($"Running {cells.Count} of {suite.Cells.Count} cells, {options.Threads} intra-op thread(s) per worker, {options.RequestTimeout.TotalSeconds:0} s per request…");

        var run = RunProgress.Show("matrix", progress => suite.Run(options.ArtifactsDir, progress, selection: selection, options: options));

        if (details)
            foreach (var rt in run.Runtimes)
            foreach (var (c, listing) in rt.Listings)
            {
                Console.WriteLine($"--- {rt.Runtime.Id}: {c} ---");
                Console.WriteLine(listing?["text"]?.GetValue<string>() ?? "(no listing: " + rt.Error + ")");
            }
        Console.WriteLine();
        Console.Write(ReportText.Console(run, details));
        int code = run.Passed ? 0 : 1;
        try
        {
            foreach (var f in ReportWriter.WriteAll(run, outDir)) Console.WriteLine($"wrote {Rel(f)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The verdicts above stand; the run fails because its report could not be kept.
            Console.Error.WriteLine($"error: could not write the reports to {Path.GetFullPath(outDir)}: {ReportWriteFailure(e)}");
            code = 1;
        }
        bool missingRequired = Suite.RequireAll && suite.Runtimes.Any(r => !r.Available);
        if (missingRequired) Console.Error.WriteLine("error: CONFORMANCE_REQUIRE_ALL=1 and a runtime is missing: " + string.Join(", ", suite.Runtimes.Where(r => !r.Available).Select(r => r.Id)));
        return missingRequired ? 1 : code;
    }

    /// <summary>"could not save FILE: No space left on device (ENOSPC): …", naming the file or the folder.</summary>
    internal static string ReportWriteFailure(Exception e) => e is Conformance.Files.SaveFailedException ? e.Message : Conformance.Files.Errno.Cause(e);

    public static int Runtimes()
    {
        var suite = new Suite(Repo());
        foreach (var r in suite.Runtimes)
            Console.WriteLine($"{r.Id,-20} {(r.Available ? "available" : "MISSING"),-10} {r.Where}  {r.MissingReason}{(r.Launch is null ? "" : "\n    " + r.Launch.Display())}");
        foreach (var r in suite.AwaitingDevice) Console.WriteLine($"{r.Id,-20} {"SKIPPED",-10} cells planned and skipped: {r.MissingReason}");
        foreach (var n in suite.DiscoveryNotes) Console.WriteLine("  note: " + n);
        return suite.Runtimes.All(r => r.Available) ? 0 : 1;
    }

    public static int Fixtures(string[] only, string[] caseNames, string[] routeNames)
    {
        var repo = Repo();
        var suite = new Suite(repo);
        var unknown = only.Where(id => suite.Runtimes.All(r => r.Id != id)).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"error: no runtime {string.Join(", ", unknown)}; found {string.Join(", ", suite.Runtimes.Select(r => r.Id))}");
            return 2;
        }
        var golden = Catalogue.All.Where(c => c.Golden).Select(c => c.Name).ToList();
        var unknownCases = caseNames.Where(n => !golden.Contains(n)).ToList();
        if (unknownCases.Count > 0)
        {
            Console.Error.WriteLine($"error: no golden case {string.Join(", ", unknownCases)}; golden cases: {string.Join(", ", golden)}");
            return 2;
        }
        int errors = 0;
        foreach (var f in GoldenFixtureWriter.Write(suite.Runtimes, repo.FixturesDir, RunnerOptions.FromEnvironment(repo.ArtifactsDir),
                     e => { errors++; Console.Error.WriteLine("error: " + e); }, only.Length == 0 ? null : only, caseNames.Length == 0 ? null : caseNames, routeNames.Length == 0 ? null : routeNames))
            Console.WriteLine($"wrote {Path.GetRelativePath(repo.Root, f)} (+ .json)");
        return errors == 0 ? 0 : 1;
    }

    public static int Bench()
    {
        var repo = Repo();
        var suite = new Suite(repo);
        // CONFORMANCE_BENCH_CHECK_ONLY=1: only check's timings (the codec's bench takes minutes and GBs).
        if (Environment.GetEnvironmentVariable("CONFORMANCE_BENCH_CHECK_ONLY") != "1")
        {
            // BENCH_SIZES (standard, large, or TENSORSxELEMENTS; default both) and BENCH_REPEATS choose what is measured.
            var sizes = BenchReport.Sizes(Environment.GetEnvironmentVariable("BENCH_SIZES"), Environment.GetEnvironmentVariable("BENCH_REPEATS"),
                large: Environment.GetEnvironmentVariable("CONFORMANCE_BENCH_LARGE") != "0");
            var bench = BenchReport.Run(suite.Runtimes, Path.Combine(repo.ArtifactsDir, "bench"), sizes, Console.Error.WriteLine);
            BenchReport.Write(bench, repo.ReportsDir);
            Console.Write(BenchReport.Markdown(bench));
        }
        // Then `conformance check` as a user times it: appended to bench.md, and under "check" in bench.json.
        var sample = Path.Combine(repo.FixturesDir, "pytorch-2.6", "nonpersistent_buffer.pickle.pt");
        var timing = Conformance.Orchestrator.Check.CheckBench.Run(Path.Combine(AppContext.BaseDirectory, "conformance.dll"), sample, runs: 5, Console.Error.WriteLine);
        var md = Conformance.Orchestrator.Check.CheckBench.Markdown(timing);
        var mdPath = Path.Combine(repo.ReportsDir, "bench.md");
        var jsonPath = Path.Combine(repo.ReportsDir, "bench.json");
        Directory.CreateDirectory(repo.ReportsDir);
        var existing = File.Exists(jsonPath) ? System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(jsonPath)) as System.Text.Json.Nodes.JsonObject : null;
        var json = existing ?? new System.Text.Json.Nodes.JsonObject();
        json["check"] = timing;
        Conformance.Files.DurableFile.WriteText(jsonPath, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        Conformance.Files.DurableFile.WriteText(mdPath, (File.Exists(mdPath) && existing is not null ? File.ReadAllText(mdPath).Split("\n## `conformance check`, warm")[0] : "# bench\n") + md);
        Console.Write(md);
        Console.WriteLine("wrote reports/bench.json, reports/bench.md");
        return 0;
    }
}
