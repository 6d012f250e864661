using Conformance.Orchestrator;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runtimes;

// conformance report [--out DIR] [--cells GLOB]
//   Runs the whole matrix, prints it as tables, writes reports/compatibility.{json,md,html}.
//   Exit code 0 when every cell passed, failed as declared or is not applicable; 1 otherwise.
// conformance runtimes
//   Prints what discovery found, and why a runtime is missing.
// conformance bench
//   The checkpoint codec against torch.save / torch.load on ~419 MB, as ratios (reports/bench.md).
// conformance fixtures
//   Regenerates the golden fixtures of every available runtime.
var command = args.Length > 0 ? args[0] : "report";
var repo = RepoLayout.Find(Directory.GetCurrentDirectory());
var suite = new Suite(repo);

if (command == "runtimes")
{
    foreach (var r in suite.Runtimes)
        Console.WriteLine($"{r.Id,-20} {(r.Available ? "available" : "MISSING"),-10} {r.Where}  {r.MissingReason}{(r.Launch is null ? "" : "\n    " + r.Launch.Display())}");
    foreach (var n in suite.DiscoveryNotes) Console.WriteLine("  note: " + n);
    return suite.Runtimes.All(r => r.Available) ? 0 : 1;
}
if (command == "fixtures")
{
    // Regenerates fixtures/<runtime>/<case>.<route>.* for every available runtime; older producer
    // versions' folders are kept, which is the point of golden fixtures.
    int errors = 0;
    foreach (var f in GoldenFixtures.Write(suite.Runtimes, repo.FixturesDir, RunnerOptions.Default(repo.ArtifactsDir),
                 e => { errors++; Console.Error.WriteLine("error: " + e); }))
        Console.WriteLine($"wrote {Path.GetRelativePath(repo.Root, f)} (+ .json)");
    return errors == 0 ? 0 : 1;
}
if (command == "bench")
{
    var bench = BenchReport.Run(suite.Runtimes, Path.Combine(repo.ArtifactsDir, "bench"), repeats: 3, Console.Error.WriteLine);
    BenchReport.Write(bench, repo.ReportsDir);
    Console.Write(BenchReport.Markdown(bench));
    Console.WriteLine("wrote reports/bench.json, reports/bench.md");
    return 0;
}
if (command != "report")
{
    Console.Error.WriteLine("usage: Conformance.Cli [report [--out DIR] [--cells GLOB] | runtimes]");
    return 2;
}

string outDir = Option("--out") ?? repo.ReportsDir;
string? filter = Option("--cells");
var cells = filter is null ? suite.Cells
    : suite.Cells.Where(c => Conformance.Orchestrator.KnownFailures.KnownFailure.MatchesPattern(filter, c)).ToList();

Console.WriteLine("Runtimes:");
foreach (var r in suite.Runtimes)
    Console.WriteLine($"  {r.Id,-20} {(r.Available ? r.Where : "MISSING: " + r.MissingReason)}");
Console.WriteLine($"Running {cells.Count} cells…");

var progress = new ProgressBar(Console.Error);
var run = suite.Run(Path.Combine(repo.ArtifactsDir, "report"), (result, done, total) => progress.Update(done, total, result));
progress.Done();

foreach (var rt in run.Runtimes)
foreach (var (c, listing) in rt.Listings)
{
    Console.WriteLine($"--- {rt.Runtime.Id}: {c} ---");
    Console.WriteLine(listing?["text"]?.GetValue<string>() ?? "(no listing: " + rt.Error + ")");
}
Console.WriteLine();
Console.Write(ReportText.Console(run));
foreach (var f in ReportWriter.WriteAll(run, outDir)) Console.WriteLine($"wrote {Path.GetRelativePath(Directory.GetCurrentDirectory(), f)}");

bool missingRequired = Suite.RequireAll && suite.Runtimes.Any(r => !r.Available);
return run.Count(Outcome.Fail) == 0 && run.UnmatchedKnownFailures.Count == 0 && !missingRequired ? 0 : 1;

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>A one-line progress bar on stderr, redrawn in place on a terminal, sparse otherwise.</summary>
sealed class ProgressBar(TextWriter err)
{
    private readonly bool _tty = !Console.IsErrorRedirected;
    private readonly DateTime _start = DateTime.Now;
    private int _lastPrinted = -1;

    public void Update(int done, int total, CellResult last)
    {
        const int width = 30;
        int filled = total == 0 ? width : done * width / total;
        var line = $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} {(DateTime.Now - _start).TotalSeconds,5:0}s {last.Outcome.Wire(),-14} {last.Cell.Name}";
        if (_tty) err.Write("\r" + line.PadRight(Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 160) : 120)[..Math.Min(line.Length + 20, 159)]);
        else if (done * 10 / Math.Max(total, 1) != _lastPrinted || done == total) { _lastPrinted = done * 10 / Math.Max(total, 1); err.WriteLine(line); }
    }

    public void Done()
    {
        if (_tty) err.WriteLine();
    }
}
