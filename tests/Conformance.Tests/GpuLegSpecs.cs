using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.GpuLeg;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Reports;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// The real GPU run (an NVIDIA H200, torch 2.11, 2026-12-04; <c>gpu-runs/h200-2026-12-04/</c>) as the
/// orchestrator sees it: its rows, decided by the retired on-device judge, under the repository's
/// ledger; the device-specific entries proven narrow by plants; and the device-difference view of the
/// matrix beside it, whose rules <c>conformance check</c> finds in the same files.
/// </summary>
[Trait("Category", "matrix")]
[Collection(MatrixCollection.Name)]
public sealed class GpuLegSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    private static readonly RepoLayout Repo = RepoLayout.Find();
    private static string H200Report => Path.Combine(Repo.Root, "gpu-runs", "h200-2026-12-04", "gpu-report.run1.json");
    private static FailureLedger RepoLedger => FailureLedger.Load(Repo.KnownFailuresFile);

    private static RunResult H200(FailureLedger ledger) =>
        RetiredJudgeReport.Rejudge(JsonNode.Parse(File.ReadAllText(H200Report))!, H200Report, ledger, new DateOnly(2026, 12, 4));

    /// <summary>The 14 cells the H200 run failed before they were triaged, with the entry each now falls under.</summary>
    public static IEnumerable<object[]> Triaged() => new (string Cell, string Entry)[]
    {
        ("storage_offsets/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.11-cuda/default", "pybridge-save-view-offset-cuda-silently-wrong"),
        ("storage_offsets/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.11-cuda/weights_only", "pybridge-save-view-offset-cuda-silently-wrong"),
        ("storage_offsets/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.11-cuda/mmap", "pybridge-save-view-offset-deflate-mmap-cuda-silently-wrong"),
        ("cnn_batchnorm/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.11-cuda/mmap", "pybridge-deflate-mmap-cuda-silently-wrong"),
        ("gru/torchscript_trace/pytorch-1.13@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("gru/torchscript_trace/pytorch-2.6@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("gru/torchscript_trace/pytorch-2.14@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("gru/torchscript_trace/torchsharp-0.107@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("embedding_bilstm/torchscript_trace/pytorch-1.13@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("embedding_bilstm/torchscript_trace/pytorch-2.6@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("embedding_bilstm/torchscript_trace/pytorch-2.14@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("embedding_bilstm/torchscript_trace/torchsharp-0.107@golden->pytorch-2.11-cuda/default", "pytorch-trace-rnn-bound-to-cpu"),
        ("gru/torchscript_trace/pytorch-2.11-cuda->pytorch-2.11-cuda/default", "pytorch-trace-rnn-cuda-eval-frozen"),
        ("embedding_bilstm/torchscript_trace/pytorch-2.11-cuda->pytorch-2.11-cuda/default", "pytorch-trace-rnn-cuda-eval-frozen"),
    }.Select(x => new object[] { x.Cell, x.Entry });

    [Fact]
    public void The_H200_runs_rows_under_the_repository_ledger_have_no_unexpected_failure_and_say_who_judged_them()
    {
        var run = H200(RepoLedger);
        output.WriteLine(run.SummaryLine());
        Assert.Empty(run.Results.Where(r => r.Outcome == Outcome.Fail).Select(r => $"{r.Cell.Name}: {r.Message}"));
        Assert.Empty(run.LedgerErrors);
        Assert.Equal(1198, run.Results.Count);
        Assert.All(run.Results, r => Assert.StartsWith("the retired on-device judge (python judge.py) on NVIDIA H200, 2026-12-04", r.JudgedBy));
    }

    [Theory]
    [MemberData(nameof(Triaged))]
    public void Each_of_the_14_GPU_findings_is_a_known_failure_of_its_own_entry_and_a_regression_beside_it_is_caught(string cell, string entry)
    {
        var ledger = RepoLedger;
        var r = H200(ledger).Results.Single(x => x.Cell.Name == cell);
        Assert.Equal(Outcome.KnownFailure, r.Outcome);
        Assert.Equal(entry, r.Declared!.Id);
        LedgerRegressionSpecs.AssertPlantsCaught(ledger, r, output);
    }

    [Fact(Timeout = 300_000)]
    public async Task Judge_gpu_runs_from_a_folder_outside_the_checkout_and_names_a_file_it_cannot_read()
    {
        await Task.Yield();
        var outDir = Path.Combine(Path.GetTempPath(), $"judge-gpu-{Environment.ProcessId}");
        try
        {
            var (code, text) = Shell.Run($"cd {Path.GetTempPath()} && dotnet {Cli()} judge-gpu {H200Report} --out {outDir}", TimeSpan.FromMinutes(4), output);
            Assert.True(code == 0, text);
            Assert.Contains("CONFORMANCE SUITE PASSED: 1019 passes, 179 known failures, 0 unexpected failures", text);
            Assert.True(File.Exists(Path.Combine(outDir, "compatibility.html")));
            (code, text) = Shell.Run($"cd {Path.GetTempPath()} && dotnet {Cli()} judge-gpu {outDir}/absent.tar.gz", TimeSpan.FromMinutes(4), output);
            Assert.Equal(2, code);
            Assert.Contains($"error: {outDir}/absent.tar.gz: no such file", text);
            Assert.DoesNotContain("   at ", text);
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    [Fact]
    public void Without_the_GPU_entries_the_same_rows_fail_again_the_ledger_is_applied_afresh_on_every_judgement()
    {
        var gpuOnly = RepoLedger.Entries.Where(e => e.Cells.Any(c => c.Consumers.Contains("pytorch-*-cuda"))).Select(e => e.Id).ToHashSet();
        Assert.Contains("pybridge-save-view-offset-cuda-silently-wrong", gpuOnly);
        var without = new FailureLedger(RepoLedger.Entries.Where(e => !gpuOnly.Contains(e.Id)).ToList());
        var run = H200(without);
        var failed = run.Results.Where(r => r.Outcome == Outcome.Fail).Select(r => r.Cell.Name).ToHashSet();
        foreach (var row in Triaged()) Assert.Contains((string)row[0], failed);
        Assert.Equal(14, failed.Count);
    }

    [Fact]
    public void A_device_entry_takes_a_device_cell_from_its_CPU_twins_entry_and_a_cpu_only_entry_declares_no_device_cell()
    {
        var twin = new LedgerEntry("twin", [CellSelector.Of("storage_offsets/pickle/torchsharp-*->pytorch-2.*/default")], [new("load_error", null, "RuntimeError")], "", "", default, null, 5);
        var device = new LedgerEntry("device", [CellSelector.Of("storage_offsets/pickle/torchsharp-*->pytorch-*-cuda/default")], [new("bytes", null, "views.b")], "", "", default, null, 5);
        var ledger = new FailureLedger([twin, device]);
        var onGpu = Cell.Parse("storage_offsets/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.11-cuda/default");
        var onCpu = Cell.Parse("storage_offsets/pickle/torchsharp-0.107+pybridge@golden->pytorch-2.6/default");
        Assert.True(twin.Matches(onGpu));
        Assert.Equal(["device"], ledger.EntriesFor(onGpu).Select(e => e.Id));
        Assert.Equal(["twin"], ledger.EntriesFor(onCpu).Select(e => e.Id));
        var cpuOnly = twin with { CpuOnly = true };
        Assert.False(cpuOnly.Matches(onGpu));
        Assert.True(cpuOnly.Matches(onCpu));
    }

    [Fact]
    public void The_device_difference_view_lists_the_GPU_only_silent_corruptions_and_check_finds_the_same_rules_in_those_files()
    {
        var gpu = H200(RepoLedger).Results;
        var differences = DeviceRules.Find(fixture.Run.Results.Concat(gpu)).ToList();
        foreach (var d in differences)
            output.WriteLine($"{(d.Silent ? "SILENT " : "")}{d.Case}/{d.Route}/{d.Producer}/{d.Mode}: CPU {string.Join(", ", d.Cpu)}; CUDA {string.Join(", ", d.Cuda)}; rule {d.Rule?.Id}");
        var silent = differences.Where(d => d.Silent).ToList();
        Assert.Equal(["cnn_batchnorm/pickle/torchsharp-0.107+pybridge@golden/mmap", "storage_offsets/pickle/torchsharp-0.107+pybridge@golden/default",
                      "storage_offsets/pickle/torchsharp-0.107+pybridge@golden/mmap", "storage_offsets/pickle/torchsharp-0.107+pybridge@golden/weights_only"],
            silent.Select(d => $"{d.Case}/{d.Route}/{d.Producer}/{d.Mode}").Order(StringComparer.Ordinal));
        Assert.All(silent, d => Assert.NotNull(d.Rule));
        Assert.All(silent, d => Assert.All(d.Cpu, c => Assert.Equal("refused", c.State)));
        // The traced RNNs: loaded on the CPU, refused on CUDA, a difference that is not silent.
        Assert.Contains(differences, d => d is { Case: "gru", Route: "torchscript_trace", Silent: false } && d.Cuda.All(c => c.State == "refused"));
        // Every difference where CUDA refuses or reads wrong is explained by a rule (a wider device tolerance alone is not such a difference).
        Assert.All(differences.Where(d => d.Cuda.Any(c => c.State is "refused" or "wrong values")), d => Assert.True(d.Rule is not null, $"{d.Case}/{d.Route}/{d.Producer}/{d.Mode} has no rule"));

        // check reads the same files and warns with the same rules: one rule table, both places.
        var outDir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-leg-check");
        var byFile = differences.Where(d => d.Rule is not null)
            .GroupBy(d => Path.Combine(Repo.FixturesDir, d.Producer.Replace(GoldenFixture.Suffix, ""), $"{d.Case}.{d.Route}{Catalogue.ExtensionOf(d.Route)}"))
            .ToDictionary(g => g.Key, g => g.Select(d => d.Rule!).Distinct().ToList());
        var (code, text) = Shell.Run($"dotnet {Cli()} check {string.Join(" ", byFile.Keys)} --json --out {outDir}", TimeSpan.FromSeconds(300), output);
        Assert.True(code is 0 or 1, text);
        var checkJson = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "check.json")))!;
        foreach (var (file, rules) in byFile)
        {
            var entry = checkJson["files"]!.AsArray().Single(f => f!["path"]!.GetValue<string>().EndsWith(Path.GetRelativePath(Repo.FixturesDir, file), StringComparison.Ordinal))!;
            var warnings = entry["device_warnings"]!.AsArray().Select(w => w!.GetValue<string>()).ToList();
            output.WriteLine($"{file}: {string.Join(" | ", warnings)}");
            foreach (var rule in rules) Assert.Contains(rule.Warning, warnings);
        }
        Assert.Contains(byFile, kv => kv.Value.Any(r => r.Id == "view-past-record"));
        Assert.Contains(byFile, kv => kv.Value.Any(r => r.Id == "traced-device"));
    }

    [Fact]
    public async Task An_archive_with_an_entry_outside_its_layout_is_refused_naming_the_entry()
    {
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-leg-archive");
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.CreateDirectory(dir);
        var archive = Path.Combine(dir, "gpu-check-evil.tar.gz");
        await using (var gz = new GZipStream(File.Create(archive), CompressionLevel.Fastest))
        await using (var tar = new TarWriter(gz, TarEntryFormat.Pax))
        {
            var e = new PaxTarEntry(TarEntryType.RegularFile, "../outside.txt") { DataStream = new MemoryStream([1, 2, 3]) };
            await tar.WriteEntryAsync(e);
        }
        var error = Assert.Throws<InvalidDataException>(() => GpuArchive.Open(archive, Path.Combine(dir, "unpacked")));
        Assert.Contains("../outside.txt", error.Message);
        Assert.StartsWith(archive, error.Message);
        Assert.False(File.Exists(Path.Combine(dir, "outside.txt")));
        // An old archive (a report judged on the device, no raw replies) is named as such.
        File.WriteAllBytes(Path.Combine(dir, "empty.tar.gz"), []);
        Assert.Throws<InvalidDataException>(() => GpuArchive.Open(Path.Combine(dir, "empty.tar.gz"), Path.Combine(dir, "unpacked")));
        var real = Path.Combine(Repo.Root, "gpu-runs", "h200-2026-12-04");
        Assert.False(File.Exists(Path.Combine(real, "gpu-check-pytorch-2.11-cuda.tar.gz")));  // the set is committed under fixtures/, the archive is not
    }

    private static string Cli()
    {
        var dll = new[] { "Release", "Debug" }.Select(c => Path.Combine(Repo.Root, "harness", "Conformance.Cli", "bin", c, "net10.0", "conformance.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        return dll ?? throw new FileNotFoundException("the CLI is not built: run `make build`");
    }
}
