using System.CommandLine;
using Conformance.Cli;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;

// Output that cannot be written (a full disk under a redirect) is reported, never an abort.
var console = ConsoleGuard.Install();

// conformance run|report|check|compare|merge|baseline|history|judge-gpu|ledger|fixtures|bench|runtimes|doctor: commands only; every
// judgement lives in Conformance.Orchestrator. Exit codes: 0 passed, 1 failed (a cell, the ledger, a
// regression), 2 bad usage.

var caseOpt = new Option<string?>("--case") { Description = "Only these cases (comma-separated globs), e.g. lenet,ckpt_*" };
var routeOpt = new Option<string?>("--route") { Description = "Only these routes (comma-separated globs), e.g. pickle,torchscript_*" };
var runtimeOpt = new Option<string?>("--runtime") { Description = "Only cells whose producer and consumer both match these globs (golden fixtures always do), e.g. 'pytorch-*,torchsharp-0.107'" };
var modeOpt = new Option<string?>("--mode") { Description = "Only these load modes (comma-separated globs), e.g. default,mmap" };
var cellsOpt = new Option<string?>("--cells") { Description = "Only cells whose name matches this glob: * within a segment, ** across, {a,b}" };
var shardOpt = new Option<string?>("--shard") { Description = "Run shard i of n (i/n), split by artifact; join the shards with `merge`" };
var outOpt = new Option<string?>("--out") { Description = "Folder for compatibility.{json,md,html} (default: reports/)" };
var artifactsOpt = new Option<string?>("--artifacts") { Description = "Folder for the files the cells write and read (default: artifacts/report); inside the repository, so the rootfs runtimes see it" };
var timeoutOpt = new Option<double?>("--timeout") { Description = "Seconds a worker may take for one request (default 120, or CONFORMANCE_TIMEOUT)" };
var threadsOpt = new Option<int?>("--threads") { Description = "Intra-op threads pinned in every worker (default 1, or CONFORMANCE_THREADS); the runtimes already work in parallel" };
foreach (var o in new Option[] { timeoutOpt, threadsOpt })
    o.Validators.Add(r =>
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (!double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var v) || v <= 0) r.AddError($"{r.Option.Name} must be a positive number (got \"{text}\")");
    });
shardOpt.Validators.Add(r =>
{
    try { Selection.ParseShard(r.Tokens[0].Value); }
    catch (FormatException e) { r.AddError(e.Message); }
});

var root = new RootCommand("TorchSharp ⇄ PyTorch conformance suite: what one side saves, the other loads intact.");
root.Subcommands.Add(RunCommand("run", "Run the matrix (or a selection of it) and write compatibility.{json,md,html}.", details: false));
root.Subcommands.Add(RunCommand("report", "`run`, also printing every runtime's seed listing and a table per case and route (make report).", details: true));

var oldArg = new Argument<string>("old") { Description = "The earlier run's compatibility.json" };
var newArg = new Argument<string>("new") { Description = "The later run's compatibility.json" };
var mapOpt = new Option<string[]>("--map") { Description = "Rename runtime ids of OLD to NEW's, e.g. torchsharp-0.107=torchsharp-0.108 (repeatable)", AllowMultipleArgumentsPerToken = false };
var mdOpt = new Option<string?>("--markdown") { Description = "Also write the comparison as Markdown to this file (for a PR comment)" };
var changeOpt = new Option<bool>("--fail-on-change") { Description = "Exit 1 on any changed outcome, new or vanished cell, not only regressions (the determinism gate)" };
var htmlUrlOpt = new Option<string?>("--html-url") { Description = "Where the new run's compatibility.html will be, for the summary's links to each cell (default: compatibility.html beside the summary)" };
var compare = new Command("compare", "Compare two runs (a compatibility.json or a baseline): regressions, fixes, new and vanished cells, tolerance drift, environment changes. Exit 1 on a regression.")
    { oldArg, newArg, mapOpt, mdOpt, changeOpt, htmlUrlOpt };
compare.SetAction(r => Commands.Compare(r.GetValue(oldArg)!, r.GetValue(newArg)!, r.GetValue(mapOpt) ?? [], r.GetValue(mdOpt), r.GetValue(changeOpt), r.GetValue(htmlUrlOpt)));
root.Subcommands.Add(compare);

var baselineReportArg = new Argument<string>("report") { Description = "A complete run's compatibility.json (a merged one for shards)" };
var baselineOutOpt = new Option<string?>("--out") { Description = "The file to write (default: reports/baseline.json)" };
var commitOpt = new Option<string?>("--commit") { Description = "The commit the run was made from (make baseline passes git rev-parse HEAD)" };
var readmeOpt = new Option<string?>("--readme") { Description = "Also rewrite this README's overview table from the baseline" };
var baselineCmd = new Command("baseline", "Write the compact baseline of a complete run: per cell its outcome, problem codes and subjects, ledger id and largest difference; nothing observed.")
    { baselineReportArg, baselineOutOpt, commitOpt, readmeOpt };
baselineCmd.SetAction(r => Commands.MakeBaseline(r.GetValue(baselineReportArg)!, r.GetValue(baselineOutOpt), r.GetValue(commitOpt), r.GetValue(readmeOpt)));
root.Subcommands.Add(baselineCmd);

var historyArg = new Argument<string[]>("reports") { Description = "The runs' compatibility.json files or baselines, in any order (they are ordered by their generated time)", Arity = ArgumentArity.OneOrMore };
var historyOutOpt = new Option<string?>("--out") { Description = "Folder for history.{html,md} (default: reports/history/)" };
var historyCmd = new Command("history", "A static page from a series of runs: the summary over time, when each cell last changed and to what, since when each ledger entry has held.")
    { historyArg, historyOutOpt };
historyCmd.SetAction(r => Commands.History(r.GetValue(historyArg)!, r.GetValue(historyOutOpt)));
root.Subcommands.Add(historyCmd);

var shardsArg = new Argument<string[]>("reports") { Description = "The shards' compatibility.json files; a gpu-check archive (.tar.gz) or GPU report is judged first (judge-gpu)", Arity = ArgumentArity.OneOrMore };
var merge = new Command("merge", "Join sharded runs into one report (json, md, html).") { shardsArg, outOpt };
merge.SetAction(r => Commands.Merge(r.GetValue(shardsArg)!, r.GetValue(outOpt)));
root.Subcommands.Add(merge);

var gpuArchiveArg = new Argument<string>("archive") { Description = "gpu-check's gpu-check-<id>.tar.gz (or a retired on-device judge's gpu-report.json)" };
var judgeGpu = new Command("judge-gpu", "Judge a GPU run's raw replies on this machine with the matrix's judge and ledger: the GPU rows (json, md, html; default reports/gpu/). merge also takes the archive.")
    { gpuArchiveArg, outOpt };
judgeGpu.SetAction(r => Commands.JudgeGpu(r.GetValue(gpuArchiveArg)!, r.GetValue(outOpt)));
root.Subcommands.Add(judgeGpu);

var fixOpt = new Option<bool>("--fix") { Description = "Rewrite known-failures.json from a complete run, printing what changed" };
var fromOpt = new Option<string?>("--from") { Description = "The run to read (default: reports/compatibility.json)" };
var ledger = new Command("ledger", "Check the failure ledger (known-failures.json) against a run; --fix rewrites it.") { fixOpt, fromOpt };
ledger.SetAction(r => Commands.Ledger(r.GetValue(fixOpt), r.GetValue(fromOpt)));
root.Subcommands.Add(ledger);

var onlyOpt = new Option<string[]>("--runtime") { Description = "Only these runtimes' fixture sets (repeatable), e.g. a newly added pytorch-2.14" };
var fixtureCaseOpt = new Option<string[]>("--case") { Description = "Only these cases' fixtures (repeatable), e.g. a newly added case; other files are kept" };
var fixtureRouteOpt = new Option<string[]>("--route") { Description = "Only these routes' fixtures (repeatable), e.g. a newly added route of an existing case; other files are kept" };
var fixtures = new Command("fixtures", "Regenerate fixtures/<runtime>/ for the runtimes present (or those given); other versions' folders are kept.") { onlyOpt, fixtureCaseOpt, fixtureRouteOpt };
fixtures.SetAction(r => Commands.Fixtures(r.GetValue(onlyOpt) ?? [], r.GetValue(fixtureCaseOpt) ?? [], r.GetValue(fixtureRouteOpt) ?? []));
root.Subcommands.Add(fixtures);

var bench = new Command("bench", "The checkpoint codec against torch.save / torch.load like for like, on 0.42 and 4.56 GB (BENCH_SIZES, BENCH_REPEATS), as ratios with the machine's limits (reports/bench.md).");
bench.SetAction(_ => Commands.Bench());
root.Subcommands.Add(bench);

var checkPaths = new Argument<string[]>("path") { Description = "Files or folders: torch.save (zip or legacy), checkpoint dicts, TorchScript, safetensors, TorchSharp Module.save, Hugging Face folders (sharded or not)", Arity = ArgumentArity.OneOrMore };
var twinOpt = new Option<string?>("--model-twin") { Description = "Also load each state dict into this suite twin (e.g. lenet) on every runtime and compare eval outputs" };
var checkJsonOpt = new Option<bool>("--json") { Description = "Print check.json instead of Markdown (with --out: write it there)" };
var checkHtmlOpt = new Option<bool>("--html") { Description = "Write check.html (needs --out)" };
var checkOutOpt = new Option<string?>("--out") { Description = "Folder for check.{md,json,html}, relative to the current folder; without it nothing is written" };
var checkInputOpt = new Option<string?>("--input") { Description = "With --model-twin: the eval input, ones, zeros, seed:N (the case's input pattern with salt N) or a tensor file saved with torch.save (default: the case's own input)" };
var checkDotnetOpt = new Option<bool>("--dotnet") { Description = "Only TorchSharp's readers and the codec (the inventory read by TorchCheckpoints, no Python): the fast answer" };
var check = new Command("check", "Will my model load in .NET? Every reader of every runtime on your files: inventory, results, a verdict and the remedy. Exit 0 loads, 1 a model file does not load, 2 bad usage, 3 not a model file (optimizer state, single tensor, empty, unknown), 4 an I/O error, 5 it loads but not into --model-twin.")
    { checkPaths, twinOpt, checkInputOpt, checkDotnetOpt, checkJsonOpt, checkHtmlOpt, checkOutOpt, timeoutOpt };
check.SetAction(r => Commands.Check(r.GetValue(checkPaths)!, r.GetValue(twinOpt), r.GetValue(checkJsonOpt), r.GetValue(checkHtmlOpt), r.GetValue(checkOutOpt), r.GetValue(timeoutOpt), r.GetValue(checkInputOpt), r.GetValue(checkDotnetOpt)));
root.Subcommands.Add(check);

var runtimes = new Command("runtimes", "What discovery found, and why a runtime is missing.");
runtimes.SetAction(_ => Commands.Runtimes());
root.Subcommands.Add(runtimes);

var doctor = new Command("doctor", "Check this machine: interpreters with torch, TorchSharp's native library, libstdc++, the rootfs, mounts, disk.");
doctor.SetAction(_ => Commands.Doctor());
root.Subcommands.Add(doctor);

var parsed = root.Parse(args.Length == 0 ? ["--help"] : args);
if (parsed.Errors.Count > 0)
{
    foreach (var e in parsed.Errors) Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine();
    // The usage of the command that was asked for.
    root.Parse([.. parsed.Tokens.TakeWhile(t => t.Type == System.CommandLine.Parsing.TokenType.Command).Select(t => t.Value), "--help"]).Invoke();
    console.ReportFailures();
    return 2;
}
int exitCode;
try
{
    exitCode = parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e)
{
    // A bug or an I/O failure no command expected: said, with its evidence, and exit 1, never an abort.
    Console.Error.WriteLine($"error: {(e is IOException or UnauthorizedAccessException ? Conformance.Files.Errno.Cause(e) : e.GetType().Name + ": " + e.Message)}");
    // The stack trace is for whoever debugs the suite, not for a user (CONFORMANCE_DEBUG=1 shows it).
    if (Environment.GetEnvironmentVariable("CONFORMANCE_DEBUG") == "1") Console.Error.WriteLine(e.ToString());
    else Console.Error.WriteLine("(set CONFORMANCE_DEBUG=1 for the stack trace)");
    exitCode = e is IOException or UnauthorizedAccessException ? 4 : 1;
}
// Output lost to a full disk fails the command, even where its verdict passed.
if (console.ReportFailures()) exitCode = Math.Max(exitCode, 1);
return exitCode;

Command RunCommand(string name, string description, bool details)
{
    var command = new Command(name, description) { caseOpt, routeOpt, runtimeOpt, modeOpt, cellsOpt, shardOpt, outOpt, artifactsOpt, timeoutOpt, threadsOpt };
    command.SetAction(r => Commands.Run(
        new Selection(r.GetValue(cellsOpt), r.GetValue(caseOpt), r.GetValue(routeOpt), r.GetValue(runtimeOpt), r.GetValue(modeOpt), r.GetValue(shardOpt)),
        r.GetValue(outOpt), r.GetValue(timeoutOpt), r.GetValue(threadsOpt), details, r.GetValue(artifactsOpt)));
    return command;
}
