using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// Writes that never lie, with real processes on a real full disk: the CLI runs a small matrix whose
/// artifacts folder is a tiny tmpfs (bound into the rootfs, where the TorchSharp worker saves), and
/// writes its report into a full one. The run always completes, the report is always written (or the
/// CLI says where it could not write and exits 1), every affected cell fails naming the file and
/// ENOSPC, and nothing partial is left.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class IoFullDiskSpecs(ITestOutputHelper output)
{
    private const string Enospc = "No space left on device (ENOSPC)";
    private const string TorchSharp = "torchsharp-0.107";
    private static readonly RepoLayout Repo = RepoLayout.Find();

    private static string Cli() =>
        new[] { "Release", "Debug" }.Select(c => Path.Combine(Repo.Root, "harness", "Conformance.Cli", "bin", c, "net10.0", "conformance.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
        ?? throw new FileNotFoundException("the CLI is not built: run `make build`");

    private (int Code, string Text) Run(string shellCommand, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("bash", ["-c", shellCommand])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo.Root,
        };
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout)) { p.Kill(true); Assert.Fail($"timed out after {timeout}: {shellCommand}"); }
        var text = stdout.Result + stderr.Result;
        output.WriteLine($"$ {shellCommand}\n(exit {p.ExitCode}, {clock.Elapsed.TotalSeconds:0.0} s)");
        output.WriteLine(text.Length > 6000 ? text[^6000..] : text);
        return (p.ExitCode, text);
    }

    /// <summary>The runtimes the spec needs, or a skip (a failure under CONFORMANCE_REQUIRE_ALL=1).</summary>
    private static IReadOnlyList<Runtime> Need(params string[] ids)
    {
        var runtimes = MatrixFixture.Suite.Runtimes;
        foreach (var id in ids)
        {
            var rt = runtimes.FirstOrDefault(r => r.Id == id);
            MatrixFixture.SkipOrFailWhenMissing(rt is null ? $"no runtime {id}" : rt.Available ? null : $"{id}: {rt.MissingReason}");
        }
        return runtimes;
    }

    private static IoTmpfs Tmpfs(string name, int sizeKb, IEnumerable<Runtime> runtimes)
    {
        // Under the checkout, so the rootfs (which binds the checkout at the same path) can be given it too.
        var fs = IoTmpfs.Mount(Path.Combine(Repo.ArtifactsDir, $"io-full-{name}-{Environment.ProcessId}"), sizeKb, IoTmpfs.RootfsOf(runtimes), out var why);
        if (fs is null)
        {
            if (Conformance.Orchestrator.Suite.RequireAll) Assert.Fail(why);
            Skip.If(true, why);
        }
        return fs!;
    }

    private static List<JsonObject> Results(string reportDir)
    {
        var json = Path.Combine(reportDir, "compatibility.json");
        Assert.True(File.Exists(json), $"no report at {json}");
        return JsonNode.Parse(File.ReadAllText(json))!["results"]!.AsArray().Select(r => r!.AsObject()).ToList();
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task Saves_onto_a_full_artifacts_disk_fail_their_cells_naming_the_file_and_ENOSPC_and_leave_nothing()
    {
        await Task.Yield();
        var runtimes = Need(TorchSharp);
        // 64 KiB: every LeNet artifact (~250 KB) starts writing and meets the end of the disk part-way.
        using var fs = Tmpfs("saves", 64, runtimes);
        var report = Path.Combine(Repo.ArtifactsDir, "tests", "io-report");
        if (Directory.Exists(report)) Directory.Delete(report, true);
        var (code, text) = Run($"dotnet {Cli()} run --case lenet --route pickle,safetensors,torchsharp_native --runtime {TorchSharp} --mode default "
                               + $"--artifacts {fs.Dir} --out {report}", TimeSpan.FromMinutes(4));

        Assert.Equal(1, code);
        Assert.DoesNotContain("Unhandled exception", text);
        Assert.Contains("CONFORMANCE SUITE FAILED", text);
        var results = Results(report);
        Assert.True(results.Count >= 10, $"{results.Count} cells ran");
        foreach (var r in results)
        {
            var cell = r["cell"]!.GetValue<string>();
            var artifact = r["artifact"]!.GetValue<string>();
            Assert.StartsWith(fs.Dir + "/", artifact);
            Assert.Equal("fail", r["outcome"]!.GetValue<string>());
            var problem = Assert.Single(r["problems"]!.AsArray())!;
            var message = problem["message"]!.GetValue<string>();
            // The TorchSharp worker's own saves (save_py, save_safetensors, Module.save) answer save_error;
            // the orchestrator's copies of golden fixtures fail as io_error.
            Assert.Equal(cell.Contains("@golden") ? "io_error" : "save_error", problem["code"]!.GetValue<string>());
            Assert.Contains(Enospc, message);
            Assert.Contains(artifact, message);
            Assert.DoesNotContain("worker_crash", r.ToJsonString());
        }
        Assert.Contains(results, r => r["cell"]!.GetValue<string>() == $"lenet/torchsharp_native/{TorchSharp}->{TorchSharp}/default");
        // State-dict routes: each .NET library's own save, PyBridge's and TorchCheckpoints'.
        foreach (var library in new[] { "pybridge", "torchcheckpoints" })
        {
            Assert.Contains(results, r => r["cell"]!.GetValue<string>() == $"lenet/safetensors/{TorchSharp}+{library}->{TorchSharp}+{library}/default");
            Assert.Contains(results, r => r["cell"]!.GetValue<string>() == $"lenet/pickle/{TorchSharp}+{library}->{TorchSharp}+{library}/default");
        }
        // Nothing partial: no artifact, no temporary.
        Assert.Empty(fs.Files());
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_torchscript_save_onto_a_full_disk_is_a_save_error_not_a_crashed_worker()
    {
        await Task.Yield();
        var runtimes = Need(TorchSharp, "pytorch-1.13");
        // Room for the PyTorch-made source ScriptModule (~263 KB) but not for TorchSharp's retrained copy:
        // libtorch's writer aborts the process when it meets a full disk, so the save must never give it one.
        using var fs = Tmpfs("jit", 384, runtimes);
        var report = Path.Combine(Repo.ArtifactsDir, "tests", "io-report-jit");
        if (Directory.Exists(report)) Directory.Delete(report, true);
        var cell = $"lenet/torchscript_script/{TorchSharp}->{TorchSharp}/default";
        var (code, text) = Run($"dotnet {Cli()} run --cells '{cell}' --artifacts {fs.Dir} --out {report}", TimeSpan.FromMinutes(4));

        Assert.Equal(1, code);
        var r = Assert.Single(Results(report));
        var artifact = Path.Combine(fs.Dir, "lenet", "torchscript_script", TorchSharp + ".bin");
        Assert.Equal(artifact, r["artifact"]!.GetValue<string>());
        var problem = Assert.Single(r["problems"]!.AsArray())!;
        Assert.Equal("save_error", problem["code"]!.GetValue<string>());
        Assert.Contains($"could not save {artifact}: {Enospc}", problem["message"]!.GetValue<string>());
        // Only the complete source the PyTorch runtime wrote remains.
        var left = Assert.Single(fs.Files());
        Assert.Equal($"lenet/torchscript_script/{TorchSharp}.source.pt", left);
        var source = Path.Combine(fs.Dir, left);
        Assert.Equal(new FileInfo(source).Length, Conformance.Files.DurableFile.ZipLength(source));
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_full_out_folder_exits_1_naming_the_folder_and_the_file_and_never_aborts()
    {
        await Task.Yield();
        var runtimes = Need("pytorch-1.13");
        using var fs = Tmpfs("out", 64, []);
        var outDir = Path.Combine(fs.Dir, "report");
        Directory.CreateDirectory(outDir);
        // A previous report, which a failed write must leave whole.
        File.WriteAllText(Path.Combine(outDir, "compatibility.json"), "{\"previous\": true}");
        fs.Fill();
        var cell = "lenet/pickle/pytorch-1.13->pytorch-1.13/default";
        var artifacts = Path.Combine(Repo.ArtifactsDir, "tests", "io-out");

        var (code, text) = Run($"dotnet {Cli()} run --cells '{cell}' --artifacts {artifacts} --out {outDir}", TimeSpan.FromMinutes(4));
        Assert.Equal(1, code);
        Assert.Contains("CONFORMANCE SUITE PASSED: 1 passes", text);
        Assert.Contains($"error: could not write the reports to {outDir}: could not save {outDir}/compatibility.json: {Enospc}", text);
        Assert.DoesNotContain("Unhandled exception", text);
        Assert.Equal("{\"previous\": true}", File.ReadAllText(Path.Combine(outDir, "compatibility.json")));
        Assert.Equal(["filler", "report/compatibility.json"], fs.Files());

        // stdout and stderr themselves on the full disk: the handler's own write must not fail (it would abort with SIGABRT, 134).
        var log = Path.Combine(fs.Dir, "run.log");
        (code, _) = Run($"dotnet {Cli()} run --cells '{cell}' --artifacts {artifacts} --out {outDir} > {log} 2>&1", TimeSpan.FromMinutes(4));
        Assert.Equal(1, code);
        // stdout on the full disk, stderr to us: the lost output is said, naming the cause.
        (code, text) = Run($"dotnet {Cli()} run --cells '{cell}' --artifacts {artifacts} --out {outDir} > {log}", TimeSpan.FromMinutes(4));
        Assert.Equal(1, code);
        Assert.Contains($"error: could not write to standard output: {Enospc}", text);
        Assert.Contains($"error: could not write the reports to {outDir}", text);
    }
}
