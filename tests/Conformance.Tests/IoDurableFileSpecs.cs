using System.IO.Compression;
using System.Text;
using Conformance.Orchestrator.Runtimes;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Tests;

/// <summary>
/// DurableFile, the one helper every save goes through, on real files: a full tmpfs, a file cut
/// short behind the writer's back, an archive that ends early, a serializer that throws. Each time
/// the failure is reported, naming the file and the cause, and nothing is left behind.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class IoDurableFileSpecs : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"conformance-io-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);

    public IoDurableFileSpecs() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private List<string> Left(string dir) => Directory.GetFiles(dir).Select(Path.GetFileName).Order().ToList()!;

    [SkippableFact(Timeout = 60_000)]
    public async Task A_save_onto_a_full_disk_names_the_file_and_ENOSPC_and_leaves_nothing()
    {
        await Task.Yield();
        using var fs = IoTmpfs.Mount(Path.Combine(_dir, "full"), 64, [], out var why);
        Skip.If(fs is null, why);
        var path = Path.Combine(fs!.Dir, "model.pt");
        var e = Assert.Throws<SaveFailedException>(() => DurableFile.Write(path, s => s.Write(new byte[256 * 1024])));
        Assert.Contains($"could not save {path}: No space left on device (ENOSPC)", e.Message);
        Assert.Empty(fs.Files());
        // And the same folder takes a save that fits: the failure freed what it had written.
        Assert.Equal(1000, DurableFile.Write(path, s => s.Write(new byte[1000])));
        Assert.Equal(["model.pt"], fs.Files());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_file_cut_short_after_it_was_written_fails_the_size_check_and_is_removed()
    {
        await Task.Yield();
        var path = Path.Combine(_dir, "cut.bin");
        var e = Assert.Throws<SaveFailedException>(() => DurableFile.Write(path, s =>
        {
            s.Write(new byte[100_000]);
            s.Flush();
            // Another process truncates the temporary behind the writer's back.
            var temp = Assert.Single(Directory.GetFiles(_dir, ".cut.bin.*.tmp"));
            Assert.Equal(0, IoTmpfs.Sh("truncate", "-s", "10", temp).Code);
        }));
        Assert.Contains($"could not save {path}: size check failed", e.Message);
        Assert.Contains("has 10 bytes on disk, 100000 were written", e.Message);
        Assert.Empty(Left(_dir));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_serializers_own_exception_passes_through_unchanged_and_leaves_nothing()
    {
        await Task.Yield();
        var path = Path.Combine(_dir, "refused.safetensors");
        // The ledger matches a save_error by its exception type and message: they must survive.
        var e = Assert.Throws<NotImplementedException>(() => DurableFile.Write(path, s =>
        {
            s.Write(new byte[5000]);
            throw new NotImplementedException("Unrecognized data type listed: ComplexFloat32");
        }));
        Assert.Equal("Unrecognized data type listed: ComplexFloat32", e.Message);
        Assert.Empty(Left(_dir));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_save_replaces_the_previous_file_whole()
    {
        await Task.Yield();
        var path = Path.Combine(_dir, "report.json");
        File.WriteAllText(path, new string('x', 10_000));
        Assert.Equal(2, DurableFile.WriteText(path, "{}"));
        Assert.Equal("{}", File.ReadAllText(path));
        Assert.Equal(["report.json"], Left(_dir));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_path_only_writer_that_leaves_a_truncated_archive_is_reported_and_nothing_is_kept()
    {
        await Task.Yield();
        var path = Path.Combine(_dir, "script.bin");
        var e = Assert.Throws<SaveFailedException>(() => DurableFile.WriteVia(path, p =>
        {
            var bytes = Zip(("archive/data.pkl", 4000));
            File.WriteAllBytes(p, bytes[..(bytes.Length - 30)]);
        }, DurableFile.ZipLength));
        Assert.Contains($"could not save {path}: the writer left an incomplete file", e.Message);
        Assert.Empty(Left(_dir));

        // The same writer with the whole archive: kept, byte for byte.
        var whole = Zip(("archive/data.pkl", 4000), ("archive/version", 2));
        Assert.Equal(whole.Length, DurableFile.WriteVia(path, p => File.WriteAllBytes(p, whole), DurableFile.ZipLength));
        Assert.Equal(whole, File.ReadAllBytes(path));
        Assert.Equal(["script.bin"], Left(_dir));
    }

    [Fact(Timeout = 60_000)]
    public async Task The_zip_length_of_every_kept_archive_is_its_size_on_disk()
    {
        await Task.Yield();
        // Real archives from libtorch (zip64 end records), PyTorch, PyBridge and this project's codec.
        var archives = Directory.GetFiles(RepoLayout.Find().FixturesDir, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(".json", StringComparison.Ordinal)).Where(IsZip).ToList();
        Assert.True(archives.Count >= 20, $"only {archives.Count} zip fixtures found");
        foreach (var f in archives)
            Assert.True(DurableFile.ZipLength(f) == new FileInfo(f).Length, $"{f}: zip length {DurableFile.ZipLength(f)} != {new FileInfo(f).Length}");
        // And one cut anywhere in its last kilobyte is refused.
        var bytes = File.ReadAllBytes(archives[0]);
        var cut = Path.Combine(_dir, "cut.pt");
        foreach (var n in new[] { 1, 22, 60, 100, 1000 })
        {
            File.WriteAllBytes(cut, bytes[..^n]);
            Assert.Throws<InvalidDataException>(() => DurableFile.ZipLength(cut));
        }
    }

    private static bool IsZip(string f)
    {
        using var s = File.OpenRead(f);
        var head = new byte[4];
        return s.Read(head) == 4 && head[0] == 'P' && head[1] == 'K';
    }

    private static byte[] Zip(params (string Name, int Size)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, size) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(Encoding.ASCII.GetBytes(new string('a', size)));
            }
        return ms.ToArray();
    }
}
