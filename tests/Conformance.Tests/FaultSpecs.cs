using System.Diagnostics;
using System.IO.Compression;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>Faults injected into real runs: a worker killed mid-run, a flipped bit in a real artifact.</summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class FaultSpecs
{
    private static Runtime RealPyTorch()
    {
        var suite = MatrixFixture.Suite;
        // Prefer a host runtime: it starts fastest.
        var rt = suite.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderBy(r => r.Where.StartsWith("host") ? 0 : 1).FirstOrDefault();
        MatrixFixture.SkipOrFailWhenMissing(rt is null ? "no PyTorch runtime available" : null);
        return rt!;
    }

    // Faults staged from RequestStarting need one request at a time, in plan order.
    private static RunnerOptions Sequential() => RunnerOptions.FromEnvironment("unused") with { Parallel = false };

    private static IReadOnlyList<Cell> SelfCells(Runtime rt) => Planner.Plan([rt]).Where(c => c.Case == "lenet").ToList();

    private static string FreshDir(string name)
    {
        var dir = Path.Combine(MatrixFixture.Suite.Repo.ArtifactsDir, "tests", name);
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        return dir;
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_worker_killed_in_the_middle_of_a_run_fails_its_cell_naming_the_signal_and_the_rest_of_the_matrix_completes()
    {
        await Task.Yield();
        var rt = RealPyTorch();
        var cells = SelfCells(rt);
        int consumes = 0;
        var run = MatrixFixture.Suite.Run(FreshDir("kill"), cells: cells, options: Sequential(), configure: pool => pool.RequestStarting += (r, pid, op) =>
        {
            // Kill the real worker as its second load request goes out.
            if (op == "consume" && ++consumes == 2) Process.GetProcessById(pid).Kill();
        });
        Assert.Equal(cells.Count, run.Results.Count);
        var killed = run.Results[1];
        Assert.Equal(Outcome.Fail, killed.Outcome);
        Assert.Contains("killed by SIGKILL", killed.Message);
        Assert.Contains($"worker {rt.Id}", killed.Message);
        Assert.All(run.Results.Where(r => r != killed), r => Assert.True(r.Acceptable, $"{r.Cell.Name}: {r.Outcome.Wire()}: {r.Message}"));
        Assert.Contains(run.Results.Skip(2), r => r.Outcome == Outcome.Pass);
    }

    [SkippableTheory(Timeout = 300_000)]
    [InlineData("pickle")]
    [InlineData("pickle_legacy")]
    [InlineData("safetensors")]
    [InlineData("torchsharp_native")]
    public async Task A_single_flipped_bit_in_a_real_artifact_fails_every_cell_that_reads_it(string route)
    {
        await Task.Yield();
        var suite = MatrixFixture.Suite;
        // The newest PyTorch writes every route (Debian 12's has no safetensors).
        var producer = suite.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderByDescending(r => Runtime.ParseVersion(r.Version)).FirstOrDefault();
        MatrixFixture.SkipOrFailWhenMissing(producer is null ? "no PyTorch runtime available" : null);
        var consumers = suite.Runtimes.Where(r => r.Available && (r == producer || (r.Kind == RuntimeKinds.TorchSharp && route != "pickle_legacy" && Planner.Meets(r, route)))).ToList();
        var cells = consumers.Select(c => new Cell("lenet", route, producer!.Id, c.Id, "default")).ToList();
        var dir = FreshDir("flip-" + route);
        bool flipped = false;
        var run = suite.Run(dir, cells: cells, options: Sequential(), configure: pool => pool.RequestStarting += (_, _, op) =>
        {
            if (op != "consume" || flipped) return;
            FlipOneBit(Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Single(), route);
            flipped = true;
        });
        Assert.True(flipped);
        Assert.Equal(cells.Count, run.Results.Count);
        // Either the judge sees the changed bytes, or a reader's own check (zip CRC) refuses the record.
        Assert.All(run.Results, r => Assert.True(r.Outcome == Outcome.Fail && (r.Message.Contains("bytes differ") || r.Message.StartsWith("load_error")),
            $"{r.Cell.Name}: {r.Outcome.Wire()}: {r.Message}"));
    }

    /// <summary>Flips bit 0 of one byte inside tensor data: the middle of the largest zip record, or of the file.</summary>
    private static void FlipOneBit(string path, string route)
    {
        long offset = route == "pickle" ? MiddleOfLargestRecord(path) : new FileInfo(path).Length / 2;
        using var f = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        int b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 1));
    }

    private static long MiddleOfLargestRecord(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var entry = zip.Entries.Where(e => e.FullName.Contains("/data/")).OrderByDescending(e => e.Length).First();
        Assert.Equal(entry.Length, entry.CompressedLength); // torch.save stores records uncompressed
        return DataOffset(path, entry.FullName) + entry.Length / 2;
    }

    /// <summary>Where a record's bytes start: after its local file header (30 bytes + name + extra).</summary>
    private static long DataOffset(string path, string entryName)
    {
        var bytes = File.ReadAllBytes(path);
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(entryName);
        for (int i = 0; i + 30 < bytes.Length; i++)
        {
            if (bytes[i] != 0x50 || bytes[i + 1] != 0x4b || bytes[i + 2] != 3 || bytes[i + 3] != 4) continue;
            int nameLen = BitConverter.ToUInt16(bytes, i + 26), extraLen = BitConverter.ToUInt16(bytes, i + 28);
            if (nameLen == nameBytes.Length && bytes.AsSpan(i + 30, nameLen).SequenceEqual(nameBytes))
                return i + 30 + nameLen + extraLen;
        }
        throw new InvalidDataException($"{path}: no local header for {entryName}");
    }
}
