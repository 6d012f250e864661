using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// <c>gpu-check</c> with the device simulated (<c>--device cpu</c> standing in for cuda), with the
/// host's real torch, through the whole path: it observes (a device fixture set and every cell's raw
/// reply, packed into one archive of at most 16 MiB, no verdict), the real <c>conformance judge-gpu</c>
/// judges the archive on the CPU with the matrix's judge and ledger, and the real <c>conformance merge</c>
/// joins it with a real run's report; the fixture set it writes is consumed by the real TorchSharp worker
/// like any committed golden set (through CONFORMANCE_FIXTURES: a simulated set is never committed).
/// </summary>
[Trait("Category", "runtime")]
public sealed class GpuCheckSpecs(ITestOutputHelper output)
{
    private static readonly RepoLayout Repo = RepoLayout.Find();
    // One case per route family: lenet (pickle, pickle_legacy, safetensors, torchsharp_native, both
    // TorchScript routes, pickled_model, strict_false, shape_mismatch, Hugging Face shards), a
    // checkpoint, tied weights, nested (the module. and _orig_mod. prefixes).
    private const string Cases = "lenet,ckpt_adam,tied_weights,nested";
    private static string Dir(string name)
    {
        var d = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", name);
        if (Directory.Exists(d)) Directory.Delete(d, true);
        Directory.CreateDirectory(d);
        return d;
    }

    private static readonly Lazy<(int Code, string Out, string Err, string Dir, double Seconds)> Simulated = new(() =>
    {
        var dir = Dir("simulated");
        var clock = Stopwatch.StartNew();
        var (code, stdout, stderr) = Discovery.Run([PythonCodecSpecs.HostPython(), "-m", "torchconformance", "gpu-check", "--out", Path.Combine(dir, "out"),
                "--work", Path.Combine(dir, "work"), "--device", "cpu", "--cases", Cases], TimeSpan.FromSeconds(240), ("PYTHONPATH", Repo.PythonPackageDir));
        return (code, stdout, stderr, dir, clock.Elapsed.TotalSeconds);
    });

    /// <summary>gpu-check on a small case set, with faults planted in its own processes (the one fake, as the dummy worker is for the orchestrator).</summary>
    private (int Code, string Stderr, JsonNode Report, string Out, int JudgeCode) Planted(string name, string faults, params string[] extra)
    {
        var dir = Dir(name);
        // The faults are planted from the test side (python/tests/gpu_check_faults.py): gpu-check itself has no hooks.
        var (code, _, stderr) = Discovery.Run([PythonCodecSpecs.HostPython(), "-m", "tests.gpu_check_faults", faults, "--out", dir, "--device", "cpu", "--cases", "ckpt_sgd", .. extra],
            TimeSpan.FromSeconds(240), ("PYTHONPATH", Repo.PythonPackageDir));
        var archive = Assert.Single(Directory.GetFiles(dir, "gpu-check-*.tar.gz"));
        var (judgeCode, report) = JudgeGpu(archive, Path.Combine(dir, "judged"));
        return (code, stderr, report, dir, judgeCode);
    }

    /// <summary>The real <c>conformance judge-gpu</c> on an archive: its exit code and the report it wrote.</summary>
    private (int Code, JsonNode Report) JudgeGpu(string archive, string outDir)
    {
        var (code, text) = Run($"dotnet {Cli()} judge-gpu {archive} --out {outDir}", TimeSpan.FromSeconds(300));
        Assert.True(File.Exists(Path.Combine(outDir, "compatibility.json")), text);
        return (code, JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compatibility.json")))!);
    }

    private static string Cli()
    {
        var dll = new[] { "Release", "Debug" }.Select(c => Path.Combine(Repo.Root, "harness", "Conformance.Cli", "bin", c, "net10.0", "conformance.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        return dll ?? throw new FileNotFoundException("the CLI is not built: run `make build`");
    }

    private (int Code, string Text) Run(string shellCommand, TimeSpan timeout) => Shell.Run(shellCommand, timeout, output);

    private static readonly object JudgeGate = new();
    private static JsonNode? _judged;

    /// <summary>The simulated run: its runtime id, its archive, and the report <c>judge-gpu</c> made of it (judged once, shared).</summary>
    private (string Id, string Archive, JsonNode Report) Outputs()
    {
        var (code, stdout, stderr, dir, _) = Simulated.Value;
        Assert.True(code == 0, $"gpu-check exited {code}:\n{stdout}\n{stderr}");
        // --out holds two files and no folder: at most 8 files come back from the GPU machine.
        Assert.Equal(["gpu-check.log"], Directory.GetFiles(Path.Combine(dir, "out")).Select(Path.GetFileName).Where(n => !n!.EndsWith(".tar.gz")).Order());
        Assert.Empty(Directory.GetDirectories(Path.Combine(dir, "out")));
        var archive = Assert.Single(Directory.GetFiles(Path.Combine(dir, "out"), "gpu-check-*.tar.gz"));
        lock (JudgeGate)
        {
            if (_judged is null)
            {
                var (judgeCode, report) = JudgeGpu(archive, Path.Combine(dir, "judged"));
                Assert.True(judgeCode == 0, $"judge-gpu exited {judgeCode}: {report["summary"]}");
                _judged = report;
            }
        }
        var id = _judged["runtimes"]![0]!["id"]!.GetValue<string>();
        return (id, archive, _judged);
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_simulated_gpu_check_observes_without_judging_and_judge_gpu_judges_its_archive_with_the_matrix_judge()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var (id, archive, report) = Outputs();
        output.WriteLine($"gpu-check ({Cases}) took {Simulated.Value.Seconds:F1} s; archive {new FileInfo(archive).Length} bytes");
        Assert.Matches(@"^pytorch-\d+\.\d+-cuda-cpu-simulated$", id);
        Assert.True(new FileInfo(archive).Length <= 16 * 1024 * 1024, $"{archive}: {new FileInfo(archive).Length} bytes");
        // The device says what it saw, not what it means: a tally, no verdict.
        Assert.Contains($"GPU-CHECK OBSERVED {id}:", Simulated.Value.Out);
        Assert.DoesNotContain("CONFORMANCE SUITE", Simulated.Value.Out + Simulated.Value.Err);

        // The archive holds the set and gpu-run.json, nothing else, under the names the README gives.
        var names = new List<string>();
        JsonNode? run = null;
        await using (var gz = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress))
        {
            var tar = new TarReader(gz);
            while (await tar.GetNextEntryAsync() is { } e)
            {
                if (e.EntryType == TarEntryType.Directory) continue;
                names.Add(e.Name);
                if (e.Name == "gpu-run.json") run = await JsonNode.ParseAsync(e.DataStream!);
            }
        }
        Assert.Contains("gpu-run.json", names);
        Assert.All(names.Where(n => n != "gpu-run.json"), n => Assert.StartsWith($"fixtures/{id}/", n));
        Assert.Equal("gpu-run/1", run!["schema"]!.GetValue<string>());
        Assert.True(run["simulated"]!.GetValue<bool>());
        Assert.False(run["device"]!["cudnn_allow_tf32"]!.GetValue<bool>());
        // Every cell's raw reply as the worker sent it, or what the parent saw instead; and no verdict anywhere.
        var observations = run["observations"]!.AsArray();
        var consumed = observations.Where(o => o!["op"]!.GetValue<string>() == "consume").ToList();
        Assert.NotEmpty(consumed);
        Assert.All(consumed, o => Assert.True(o!["reply"] is JsonObject || o["failure"] is JsonObject, o!.ToJsonString()[..200]));
        Assert.All(consumed, o => Assert.Matches("^[0-9a-f]{64}$", o!["manifest_sha256"]!.GetValue<string>()));
        Assert.All(observations, o => Assert.Null(o!["outcome"]));
        Assert.Contains(consumed, o => o!["reply"]?["status"]?.GetValue<string>() == "ok" && o["reply"]!["result"]!["tensors"] is JsonArray);

        // judge-gpu's report: the GPU rows, each labelled with its judge, the device's facts kept.
        Assert.Equal("cuda-cpu-simulated", report["runtimes"]![0]!["device"]!.GetValue<string>());
        Assert.True(report["gpu_check"]!["simulated"]!.GetValue<bool>());
        Assert.False(report["environment"]!["device"]!["cudnn_allow_tf32"]!.GetValue<bool>());
        Assert.StartsWith("conformance judge-gpu", report["gpu_check"]!["judged_by"]!.GetValue<string>());
        Assert.All(report["results"]!.AsArray(), r => Assert.StartsWith("conformance judge-gpu", r!["judged_by"]!.GetValue<string>()));
        var judgedCells = report["results"]!.AsArray().Select(r => r!["cell"]!.GetValue<string>()).ToHashSet();
        Assert.All(consumed, o => Assert.Contains(o!["cell"]!.GetValue<string>(), judgedCells));
        // What a GPU's torch.save writes: every storage's location is cuda:0 (the simulation's tagger), in zip and legacy pickles alike.
        foreach (var f in new[] { "lenet.pickle.pt", "ckpt_adam.checkpoint.pt", "nested.prefix_orig_mod.pt" })
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(Path.Combine(Simulated.Value.Dir, "work", "fixtures", id, f));
            using var pkl = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl")).Open(), System.Text.Encoding.Latin1);
            var text = await pkl.ReadToEndAsync();
            Assert.Contains("cuda:0", text);
            Assert.DoesNotContain("cpu", text);
        }
        Assert.Contains("cuda:0", File.ReadAllText(Path.Combine(Simulated.Value.Dir, "work", "fixtures", id, "lenet.pickle_legacy.pt"), System.Text.Encoding.Latin1));

        // Every committed set and its own one met the device, on every route family, and nothing failed unexpectedly.
        var results = report["results"]!.AsArray();
        var producers = results.Select(r => r!["producer"]!.GetValue<string>()).ToHashSet();
        foreach (var set in Directory.GetDirectories(Repo.FixturesDir).Select(Path.GetFileName))
            Assert.Contains(set + GoldenFixture.Suffix, producers);
        Assert.Contains(id, producers);
        Assert.All(results, r => Assert.Equal(id, r!["consumer"]!.GetValue<string>()));
        foreach (var route in new[] { "pickle", "pickle_legacy", "torchsharp_native", "torchscript_script", "torchscript_trace", "pickled_model", "checkpoint",
                                      "safetensors", "hf_bin_sharded", "hf_safetensors", "prefix_module", "prefix_orig_mod" })
            Assert.Contains(results, r => r!["route"]!.GetValue<string>() == route);
        Assert.Contains(results, r => r!["outcome"]!.GetValue<string>() == "pass" && r["route"]!.GetValue<string>() == "checkpoint" && r["producer"]!.GetValue<string>() == "torchsharp-0.107+torchcheckpoints@golden");
        Assert.DoesNotContain(results, r => r!["outcome"]!.GetValue<string>() == "fail");
        Assert.Equal(0, report["summary"]!["fail"]!.GetValue<int>());
        // The device pair's tolerance is stated on each cell.
        Assert.All(results.Where(r => r!["case"]!.GetValue<string>() == "lenet"), r => Assert.Equal(1e-4, r!["tolerance"]!["atol"]!.GetValue<double>()));
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_crash_and_a_hang_in_gpu_check_cost_one_cell_each_and_the_archive_still_comes_back()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var id = $"pytorch-{TorchVersionOfHost()}-cuda-cpu-simulated";
        var crash = $"ckpt_sgd/checkpoint/pytorch-2.6@golden->{id}/default";
        var hang = $"ckpt_sgd/checkpoint/torchsharp-0.107+torchcheckpoints@golden->{id}/mmap";
        var cudaError = $"ckpt_sgd/checkpoint/pytorch-1.13@golden->{id}/default";
        // The process started after the crash takes 40 s to start (importing torch on a loaded machine can):
        // longer than --cell-timeout, which times cells, not start-up; its first cell must still be judged.
        // --cell-timeout 30: over ten times what an ordinary ckpt_sgd cell takes here on a loaded machine (under 2 s).
        var slowStart = $"ckpt_sgd/checkpoint/pytorch-2.6@golden->{id}/weights_only";
        var (code, stderr, report, dir, judgeCode) = Planted("faults", $"crash:{crash};hang:{hang};cuda_error:{cudaError};slow_start:{slowStart}", "--cell-timeout", "30");
        output.WriteLine(stderr);
        Assert.Equal(0, code);  // gpu-check observed every cell; it judges none
        Assert.Equal(1, judgeCode);  // judge-gpu: three unexpected failures, named
        var results = report["results"]!.AsArray();
        var crashed = Assert.Single(results, r => r!["cell"]!.GetValue<string>() == crash)!;
        Assert.Equal("fail", crashed["outcome"]!.GetValue<string>());
        Assert.Equal("worker_crash", crashed["problems"]![0]!["code"]!.GetValue<string>());
        Assert.Contains("SIGSEGV", crashed["message"]!.GetValue<string>());
        var hung = Assert.Single(results, r => r!["cell"]!.GetValue<string>() == hang)!;
        Assert.Equal("worker_timeout", hung["problems"]![0]!["code"]!.GetValue<string>());
        // A CUDA error leaves the process's context unusable: that cell fails, the process gives way, and the next cell runs in a fresh one.
        var poisoned = Assert.Single(results, r => r!["cell"]!.GetValue<string>() == cudaError)!;
        Assert.Contains("CUDA error: device-side assert triggered", poisoned["message"]!.GetValue<string>());
        Assert.Contains("going on in a fresh one", stderr);
        Assert.Contains(results, r => r!["cell"]!.GetValue<string>() == $"ckpt_sgd/checkpoint/pytorch-1.13@golden->{id}/map_location_cpu" && r["outcome"]!.GetValue<string>() == "pass");
        var slow = Assert.Single(results, r => r!["cell"]!.GetValue<string>() == slowStart)!;
        Assert.True(slow["outcome"]!.GetValue<string>() == "known_failure", $"{slowStart}: {slow.ToJsonString()}");
        // Every other cell ran: the one after each fault, in a fresh process, passed as it does without faults.
        Assert.Equal(3, report["summary"]!["fail"]!.GetValue<int>());
        Assert.Equal(0, report["summary"]!["skipped"]!.GetValue<int>());
        Assert.Contains(results, r => r!["cell"]!.GetValue<string>() == $"ckpt_sgd/checkpoint/pytorch-2.6@golden->{id}/map_location_cpu" && r["outcome"]!.GetValue<string>() == "pass");
        Assert.Contains(results, r => r!["cell"]!.GetValue<string>() == $"ckpt_sgd/checkpoint/torchsharp-0.107+torchcheckpoints@golden->{id}/map_location_cpu" && r["outcome"]!.GetValue<string>() == "pass");
        Assert.True(report["gpu_check"]!["processes"]!.GetValue<int>() >= 3 + 6);  // a process per phase (produce, 6 sets), and one after each fault
        Assert.True(report["gpu_check"]!["finished"]!.GetValue<bool>());
        Assert.Single(Directory.GetFiles(dir, "gpu-check-*.tar.gz"));
        Assert.Contains($"CRASH {crash}", File.ReadAllText(Path.Combine(dir, "gpu-check.log")));
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task Past_its_budget_gpu_check_skips_the_rest_names_them_and_still_packs_what_ran()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var id = $"pytorch-{TorchVersionOfHost()}-cuda-cpu-simulated";
        // A hang that would outlast the budget: 80 s of budget, 20 kept back to pack, so cells stop at about
        // 60 s, twelve times what the produce phase and the sets before the hang take unloaded (about 5 s).
        var hang = $"ckpt_sgd/checkpoint/pytorch-2.14@golden->{id}/default";
        var clock = Stopwatch.StartNew();
        var (code, stderr, report, dir, _) = Planted("budget", $"hang:{hang}", "--budget", "80");
        output.WriteLine(stderr);
        Assert.Equal(3, code);
        // The budget, not the 180 s cell timeout, ended the hang: gpu-check says so when it stops the cell.
        Assert.Contains($"budget spent during {hang}", stderr);
        Assert.DoesNotContain($"HANG {hang}", stderr);
        output.WriteLine($"took {clock.Elapsed}");
        var results = report["results"]!.AsArray();
        var skipped = results.Where(r => r!["outcome"]!.GetValue<string>() == "skipped").ToList();
        Assert.Contains(skipped, r => r!["cell"]!.GetValue<string>() == hang);
        Assert.All(skipped, r => Assert.Contains("budget ran out", r!["message"]!.GetValue<string>()));
        Assert.Contains(results, r => r!["outcome"]!.GetValue<string>() == "pass");  // what ran before is kept
        Assert.Equal(0, report["summary"]!["fail"]!.GetValue<int>());
        Assert.Contains($"{skipped.Count} skips", report["summary"]!["line"]!.GetValue<string>());
        var archive = Assert.Single(Directory.GetFiles(dir, "gpu-check-*.tar.gz"));
        Assert.True(new FileInfo(archive).Length > 0);
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_GPU_run_judged_once_is_judged_again_on_the_CPU_after_a_ledger_change_with_no_GPU()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var (_, archive, report) = Outputs();
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var work = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", "rejudge");
        var again = Conformance.Orchestrator.GpuLeg.GpuReport.Judge(archive, Repo.Root, work, FailureLedger.Load(Repo.KnownFailuresFile), today).Run;
        // The same archive, the same judge and ledger: the same verdicts as the CLI's.
        Assert.Equal(report["results"]!.AsArray().Select(r => $"{r!["cell"]} {r["outcome"]}"), again.Results.Select(r => $"{r.Cell.Name} {r.Outcome.Wire()}"));
        // A ledger entry that declares a passing cell: judged again, that cell is a stale entry, and nothing else moves.
        var passing = again.Results.First(r => r.Outcome == Outcome.Pass && r.Cell.Route == "checkpoint");
        var planted = new LedgerEntry("planted-stale", [CellSelector.Of(passing.Cell.Name)], [new("bytes", null, "planted")], "planted", "https://example.invalid", today, null, 1);
        var ledger = new FailureLedger([.. FailureLedger.Load(Repo.KnownFailuresFile).Entries, planted]);
        var changed = Conformance.Orchestrator.GpuLeg.GpuReport.Judge(archive, Repo.Root, work, ledger, today).Run;
        var stale = changed.Results.Single(r => r.Cell.Name == passing.Cell.Name);
        Assert.Equal(Outcome.Fail, stale.Outcome);
        Assert.StartsWith("stale known failure", stale.Message);
        Assert.Equal(again.Results.Count(r => r.Outcome == Outcome.Fail) + 1, changed.Results.Count(r => r.Outcome == Outcome.Fail));

        // A cell the catalogue plans that the run did not observe is a named skip, never silently absent.
        var unpacked = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", "dropped");
        if (Directory.Exists(unpacked)) Directory.Delete(unpacked, true);
        Directory.CreateDirectory(unpacked);
        await using (var gz = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress))
            await TarFile.ExtractToDirectoryAsync(gz, unpacked, overwriteFiles: true);
        var run = JsonNode.Parse(File.ReadAllText(Path.Combine(unpacked, "gpu-run.json")))!;
        var observations = run["observations"]!.AsArray();
        var dropped = observations.First(o => o!["op"]!.GetValue<string>() == "consume" && o["set"]!.GetValue<string>() == "pytorch-2.6")!;
        observations.Remove(dropped);
        File.WriteAllText(Path.Combine(unpacked, "gpu-run.json"), run.ToJsonString());
        var repacked = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", "gpu-check-dropped.tar.gz");
        await using (var packed = new GZipStream(File.Create(repacked), CompressionLevel.Fastest))
        await using (var tar = new TarWriter(packed, TarEntryFormat.Pax))
            foreach (var f in Directory.GetFiles(unpacked, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                await tar.WriteEntryAsync(f, Path.GetRelativePath(unpacked, f).Replace('\\', '/'));
        var missing = Conformance.Orchestrator.GpuLeg.GpuReport.Judge(repacked, Repo.Root, work, FailureLedger.Load(Repo.KnownFailuresFile), today).Run
            .Results.Single(r => r.Cell.Name == dropped["cell"]!.GetValue<string>());
        Assert.Equal(Outcome.Skipped, missing.Outcome);
        Assert.Contains("the GPU run did not observe this cell", missing.Message);
    }

    private static string TorchVersionOfHost()
    {
        var (code, stdout, stderr) = Discovery.Run([PythonCodecSpecs.HostPython(), "-c", "import torch; v = torch.__version__.split('+')[0].split('.'); print(v[0] + '.' + ''.join(c for c in v[1] if c.isdigit()))"],
            TimeSpan.FromSeconds(60));
        Assert.True(code == 0, stderr);
        return stdout.Trim();
    }

    [SkippableFact(Timeout = 600_000)]
    public async Task Conformance_merge_joins_the_gpu_report_with_a_real_run_and_the_reports_show_the_device_rows()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var (id, _, report) = Outputs();
        var dir = Dir("merge");
        var run = Path.Combine(dir, "cpu");
        var (code, text) = Run($"dotnet {Cli()} run --case lenet --route torchsharp_native --runtime pytorch-1.13 --out {run}", TimeSpan.FromSeconds(300));
        Assert.True(code == 0, text);
        var merged = Path.Combine(dir, "merged");
        // merge takes the archive itself and judges it as judge-gpu does.
        (code, text) = Run($"dotnet {Cli()} merge {run}/compatibility.json {Outputs().Archive} --out {merged}", TimeSpan.FromSeconds(300));
        Assert.True(code == 0, text);
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "compatibility.json")))!;
        var cpuCount = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "compatibility.json")))!["results"]!.AsArray().Count;
        Assert.Equal(cpuCount + report["results"]!.AsArray().Count, m["results"]!.AsArray().Count);
        var rt = m["runtimes"]!.AsArray().Single(r => r!["id"]!.GetValue<string>() == id)!;
        Assert.Equal("cuda-cpu-simulated", rt["device"]!.GetValue<string>());
        var md = File.ReadAllText(Path.Combine(merged, "compatibility.md"));
        Assert.Contains($"→ {id} |", md);
        Assert.Contains("where a side ran on a GPU", md);
        Assert.Contains("## GPU rows: who judged them", md);
        Assert.Contains("conformance judge-gpu (Judgement/, the matrix's judge)", md);
        Assert.Equal(report["results"]!.AsArray().Select(r => r!["outcome"]!.GetValue<string>()),
            m["results"]!.AsArray().Where(r => r!["consumer"]!.GetValue<string>() == id).Select(r => r!["outcome"]!.GetValue<string>()));
    }

    [SkippableFact(Timeout = 900_000)]
    public async Task The_CPU_matrix_consumes_the_device_fixture_set_from_its_archive_like_any_golden_set()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var (id, archive, _) = Outputs();
        // The README's step: unpack the archive where fixtures/ is; here a folder holding only the device's set.
        var unpacked = Dir("unpacked");
        await using (var gz = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress))
            await TarFile.ExtractToDirectoryAsync(gz, unpacked, overwriteFiles: true);
        Assert.True(File.Exists(Path.Combine(unpacked, "gpu-run.json")));
        var fixtures = Path.Combine(unpacked, "fixtures");
        Assert.Equal([id], Directory.GetDirectories(fixtures).Select(Path.GetFileName));
        Assert.True(Directory.Exists(Path.Combine(fixtures, id, "tied_weights.hf_bin_sharded.hf")));
        var outDir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", "cpu-matrix");
        var (code, text) = Run($"CONFORMANCE_FIXTURES={fixtures} dotnet {Cli()} run --cells '*/*/{id}@golden->*/*' --out {outDir}", TimeSpan.FromSeconds(800));
        Assert.True(code == 0, text);
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compatibility.json")))!["results"]!.AsArray()
            .Where(r => !r!["consumer"]!.GetValue<string>().EndsWith("-cuda")).ToList();  // torchsharp-0.107-cuda: skipped, another spec
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.StartsWith($"{id}@golden", r!["producer"]!.GetValue<string>()));
        Assert.All(results, r => Assert.NotEqual("fail", r!["outcome"]!.GetValue<string>()));
        static bool Is(JsonNode? r, string key, string value) => r![key]!.GetValue<string>() == value;
        var ts = results.Where(r => r!["consumer"]!.GetValue<string>().StartsWith("torchsharp-")).ToList();
        foreach (var route in new[] { "torchsharp_native", "torchscript_script", "torchscript_trace", "checkpoint", "prefix_module" })
            Assert.Contains(ts, r => Is(r, "route", route) && Is(r, "outcome", "pass"));
        // Hugging Face's .bin shards saved from (simulated) CUDA load with PyTorch's bytes, frozen as from the CPU: the CPU twin's entry.
        Assert.Contains(ts, r => Is(r, "cell", $"tied_weights/hf_bin_sharded/{id}@golden->torchsharp-0.107+pybridge/default")
            && r!["known_failure"]?["id"]?.GetValue<string>() == "pybridge-load-checkpoint-bin-takes-file-requires-grad");
        // TorchSharp reads the cuda:0-tagged checkpoint onto the CPU: resumed training continues as on the (simulated) GPU.
        Assert.Contains(ts, r => Is(r, "cell", $"ckpt_adam/checkpoint/{id}@golden->torchsharp-0.107+torchcheckpoints/default") && Is(r, "outcome", "pass"));
        // pickle loads, but PyBridge's load_py leaves every parameter frozen (a PyTorch file says requires_grad=False): the CPU twin's declared failure.
        Assert.Contains(ts, r => Is(r, "cell", $"lenet/pickle/{id}@golden->torchsharp-0.107+pybridge/default")
            && Is(r, "outcome", "known_failure") && r!["known_failure"]!["id"]!.GetValue<string>() == "pybridge-load-py-takes-file-requires-grad");
        // Judged with the tolerance of the device pair: the producer's side is a (simulated) GPU.
        Assert.All(results.Where(r => Is(r, "case", "lenet") && r!["tolerance"] is not null), r => Assert.Equal(1e-4, r!["tolerance"]!["atol"]!.GetValue<double>()));
        // Declared failures of the CPU twin's cells (pickle_legacy: TorchSharp cannot read the old format) apply to the device's cells too.
        Assert.Contains(ts, r => Is(r, "cell", $"lenet/pickle_legacy/{id}@golden->torchsharp-0.107+pybridge/default") && Is(r, "outcome", "known_failure"));
        // TorchCheckpoints reads the same legacy file the device wrote.
        Assert.Contains(ts, r => Is(r, "cell", $"lenet/pickle_legacy/{id}@golden->torchsharp-0.107+torchcheckpoints/default") && Is(r, "outcome", "pass"));

        // PyTorch without a GPU: map_location='cpu' reads every GPU-saved pickle; every mode without it is refused, as the awaiting entry declares.
        var py = results.Where(r => r!["consumer"]!.GetValue<string>().StartsWith("pytorch-")).ToList();
        const string Cuda = "pytorch-cpu-refuses-cuda-saved-file-without-map-location";
        foreach (var route in new[] { "pickle", "pickle_legacy", "checkpoint" })
            Assert.All(py.Where(r => Is(r, "route", route) && Is(r, "mode", "map_location_cpu")), r => Assert.Equal("pass", r!["outcome"]!.GetValue<string>()));
        var refused = py.Where(r => r!["known_failure"]?["id"]?.GetValue<string>() == Cuda).ToList();
        Assert.Contains(refused, r => Is(r, "cell", $"lenet/pickle/{id}@golden->pytorch-2.6/default"));
        Assert.Contains(refused, r => Is(r, "cell", $"ckpt_adam/checkpoint/{id}@golden->pytorch-2.14/mmap"));
        Assert.Contains(refused, r => Is(r, "cell", $"nested/prefix_module/{id}@golden->pytorch-2.6/strip_prefix"));
        Assert.All(refused, r => Assert.Contains("Attempting to deserialize object on a CUDA device", r!["message"]!.GetValue<string>()));
        Assert.All(refused, r => Assert.NotEqual("map_location_cpu", r!["mode"]!.GetValue<string>()));
        // The entry is as narrow as its finding: beside each kind of its cells (a load, 1.13's weights_only, a variant, a prefix), any other problem fails.
        var ledger = FailureLedger.Load(Path.Combine(Repo.Root, "known-failures.json"));
        foreach (var cell in new[] { $"lenet/pickle/{id}@golden->pytorch-2.6/default", $"lenet/pickle/{id}@golden->pytorch-1.13/weights_only",
                                     $"lenet/pickle_legacy/{id}@golden->pytorch-2.14/shape_mismatch", $"nested/prefix_orig_mod/{id}@golden->pytorch-2.6/default" })
        {
            var r = Assert.Single(refused, x => Is(x, "cell", cell))!;
            var problems = r["problems"]!.AsArray().Select(p => new Conformance.Orchestrator.Vocabulary.Problem(p!["code"]!.GetValue<string>(), p["subject"]!.GetValue<string>(), p["message"]!.GetValue<string>())).ToList();
            var raw = new CellResult(Cell.Parse(cell), Outcome.Fail, r["message"]!.GetValue<string>()) { Problems = problems };
            var known = ledger.Apply(raw);
            Assert.Equal(Outcome.KnownFailure, known.Outcome);
            LedgerRegressionSpecs.AssertPlantsCaught(ledger, known, output);
        }
    }

    [SkippableFact(Timeout = 600_000)]
    public async Task TorchSharp_CUDA_cells_are_skipped_with_the_reason_named_in_the_summary_and_do_not_fail_under_require_all()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var outDir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-check", "torchsharp-cuda");
        var (code, text) = Run($"CONFORMANCE_REQUIRE_ALL=1 dotnet {Cli()} run --case lenet --route pickle --out {outDir}", TimeSpan.FromSeconds(500));
        Assert.True(code == 0, text);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compatibility.json")))!;
        var results = report["results"]!.AsArray();
        var cuda = results.Where(r => r!["producer"]!.GetValue<string>().EndsWith("-cuda") || r!["consumer"]!.GetValue<string>().EndsWith("-cuda")).ToList();
        Assert.NotEmpty(cuda);
        // Both directions and every load mode of TorchSharp on CUDA are planned, each skipped with the reason.
        // pickle is a state-dict route: both .NET libraries' CUDA twins.
        foreach (var ts in new[] { "torchsharp-0.107+pybridge-cuda", "torchsharp-0.107+torchcheckpoints-cuda" })
        {
            Assert.Contains(cuda, r => r!["producer"]!.GetValue<string>() == ts);
            Assert.Contains(cuda, r => r!["consumer"]!.GetValue<string>() == ts && r["producer"]!.GetValue<string>().EndsWith("@golden"));
        }
        Assert.All(cuda, r => Assert.Equal("skipped", r!["outcome"]!.GetValue<string>()));
        Assert.All(cuda, r => Assert.Contains(Runtime.NoTorchSharpCuda, r!["message"]!.GetValue<string>()));
        Assert.All(cuda, r => Assert.Null(r!["known_failure"]));
        Assert.Equal(cuda.Count, report["summary"]!["skipped"]!.GetValue<int>());
        Assert.Empty(report["ledger_errors"]!.AsArray());
        var line = report["summary"]!["line"]!.GetValue<string>();
        Assert.StartsWith("CONFORMANCE SUITE PASSED", line);
        Assert.Contains($"{cuda.Count} skips ({cuda.Count} await a GPU: torchsharp-0.107+pybridge-cuda, torchsharp-0.107+torchcheckpoints-cuda, no TorchSharp CUDA package is available)", line);
        Assert.Contains(line, text);
        // merge keeps the words.
        var merged = Path.Combine(outDir, "merged");
        (code, text) = Run($"dotnet {Cli()} merge {outDir}/compatibility.json --out {merged}", TimeSpan.FromSeconds(120));
        Assert.True(code == 0, text);
        Assert.Contains("await a GPU: torchsharp-0.107+pybridge-cuda, torchsharp-0.107+torchcheckpoints-cuda", JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "compatibility.json")))!["summary"]!["line"]!.GetValue<string>());
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task Compare_maps_one_device_runtime_onto_another_and_sees_a_changed_device_cell()
    {
        await Task.Yield();
        PythonCodecSpecs.HostPython();
        var (id, _, report) = Outputs();
        // The same run, as if a newer torch on the GPU had produced it, with one cell broken.
        var next = id.Replace("pytorch-", "pytorch-9.").Replace("9.1.", "9.");  // pytorch-1.13-cuda-… -> pytorch-9.13-cuda-…
        var renamed = JsonNode.Parse(report.ToJsonString().Replace(id, next))!;
        var broken = renamed["results"]!.AsArray().First(r => r!["outcome"]!.GetValue<string>() == "pass" && r["route"]!.GetValue<string>() == "checkpoint")!;
        broken["outcome"] = "fail";
        var c = RunComparison.Compare(report, renamed, new Dictionary<string, string> { [id] = next });
        var regression = Assert.Single(c.Regressions);
        Assert.Contains(next, regression.Cell.Replace(id, next));
        Assert.Empty(c.NewCells);
        Assert.Empty(c.VanishedCells);
        // Without the map every device cell is new or vanished: ids with a device are ids like any other.
        var unmapped = RunComparison.Compare(report, renamed, new Dictionary<string, string>());
        Assert.Equal(report["results"]!.AsArray().Count, unmapped.VanishedCells.Count);
    }

    [Fact]
    public void Device_suffixed_ids_name_their_device_and_match_their_CPU_twins_ledger_entries()
    {
        Assert.Equal("cuda", Runtime.DeviceOf("pytorch-2.11-cuda"));
        Assert.Equal("cuda", Runtime.DeviceOf("pytorch-2.11-cuda@golden"));
        Assert.Equal("cuda-cpu-simulated", Runtime.DeviceOf("pytorch-2.6-cuda-cpu-simulated"));
        Assert.Equal("cuda", Runtime.DeviceOf("torchsharp-0.108.0-preview.1-cuda"));
        Assert.Equal("cpu", Runtime.DeviceOf("torchsharp-0.108.0-preview.1"));
        Assert.Equal("cpu", Runtime.DeviceOf("pytorch-2.6@golden"));
        Assert.Equal("pytorch-2.11@golden", Runtime.WithoutDevice("pytorch-2.11-cuda@golden"));
        Assert.Equal("pytorch-2.11-cuda", Runtime.MakeId("pytorch", "2.11.0+cu130", "cuda"));
        Assert.Equal("pytorch-2.11", Runtime.MakeId("pytorch", "2.11.0+cu130", "cpu"));
        var missing = Runtime.Missing("torchsharp-0.107-cuda", "no TorchSharp CUDA package");
        Assert.Equal(("torchsharp", "0.107", "cuda"), (missing.Kind, missing.Version, missing.Device));

        var entry = new LedgerEntry("x", [CellSelector.Of("ckpt_*/checkpoint/*->pytorch-1.13/weights_only")], [], "", "", default, null, 0);
        Assert.True(entry.Matches(Cell.Parse("ckpt_sgd/checkpoint/pytorch-2.6@golden->pytorch-1.13-cuda/weights_only")));
        Assert.False(entry.Matches(Cell.Parse("ckpt_sgd/checkpoint/pytorch-2.6@golden->pytorch-1.14-cuda/weights_only")));
        var deviceOnly = new LedgerEntry("y", [CellSelector.Of("lenet/pickle/*->pytorch-*-cuda/default")], [], "", "", default, null, 0);
        Assert.False(deviceOnly.Matches(Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.6/default")));
        Assert.True(deviceOnly.Matches(Cell.Parse("lenet/pickle/torchsharp-0.107->pytorch-2.11-cuda/default")));

        var lenet = Catalogue.Case("lenet");
        Assert.Equal(lenet.Tolerance, Catalogue.ToleranceFor(lenet, Cell.Parse("lenet/pickle/pytorch-2.6->torchsharp-0.107/default")));
        Assert.Equal(lenet.Tolerance.Atol * Catalogue.DeviceFactor, Catalogue.ToleranceFor(lenet, Cell.Parse("lenet/pickle/pytorch-2.11-cuda@golden->torchsharp-0.107/default")).Atol);
    }
}
