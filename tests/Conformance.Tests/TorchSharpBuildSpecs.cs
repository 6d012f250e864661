using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Tests;

/// <summary>
/// TorchSharp as a build parameter: each built worker folder, bin/&lt;config&gt;/torchsharp-&lt;version&gt;/,
/// is a runtime of its own. A fake repository of empty files stands in for the builds: no libtorch needed.
/// </summary>
[Trait("Category", "runtime")]
public sealed class TorchSharpBuildSpecs : IDisposable
{
    private readonly DirectoryInfo _repo = Directory.CreateTempSubdirectory("conformance-tsbuild-");
    private static readonly string Config = Environment.GetEnvironmentVariable("CONFORMANCE_CONFIGURATION") ?? "Release";

    public void Dispose() => _repo.Delete(recursive: true);

    private string Build(string version, bool withDll = true)
    {
        var dir = Path.Combine(_repo.FullName, "harness", RepoLayout.TorchSharpWorker, "bin", Config, "torchsharp-" + version, "net10.0");
        Directory.CreateDirectory(dir);
        var dll = Path.Combine(dir, RepoLayout.TorchSharpWorker + ".dll");
        if (withDll) File.WriteAllBytes(dll, []);
        return dll;
    }

    // A rootfs path with no problem: runtimes come back available, chrooted there or native on a GCC 13+ host.
    private (IReadOnlyList<Runtime> Runtimes, IReadOnlyList<string> Notes) Discover()
    {
        var discovery = new Discovery(new RepoLayout(_repo.FullName));
        return (discovery.TorchSharpRuntimes("/srv/fake-rootfs", rootfsProblem: null), discovery.Notes);
    }

    [Fact]
    public void Two_built_worker_folders_are_two_runtimes_with_distinct_ids()
    {
        var release = Build("0.107.0");
        var repack = Build("0.107.1-repack.1");
        Build("0.108.0", withDll: false); // restored or half-built: not a runtime

        var (runtimes, _) = Discover();

        Assert.Equal(["torchsharp-0.107", "torchsharp-0.107.1-repack.1"], runtimes.Select(r => r.Id));
        Assert.Equal(["0.107.0", "0.107.1-repack.1"], runtimes.Select(r => r.Version));
        Assert.All(runtimes, r => Assert.True(r.Available));
        Assert.Equal([release, repack], runtimes.Select(r => r.Launch!.Command[^1]));
    }

    [Fact]
    public void Two_releases_of_one_minor_version_are_a_missing_runtime_that_names_both_folders()
    {
        Build("0.107.0");
        Build("0.107.2");

        var r = Assert.Single(Discover().Runtimes);

        Assert.Equal("torchsharp-0.107", r.Id);
        Assert.False(r.Available);
        Assert.Contains("2 TorchSharp worker builds share the id torchsharp-0.107", r.MissingReason);
        Assert.Contains("torchsharp-0.107.0", r.MissingReason);
        Assert.Contains("torchsharp-0.107.2", r.MissingReason);
    }

    [Fact]
    public void A_folder_whose_name_is_not_a_NuGet_version_is_ignored_with_a_note()
    {
        Build("0.107.0");
        Build("latest");

        var (runtimes, notes) = Discover();

        Assert.Equal("torchsharp-0.107", Assert.Single(runtimes).Id);
        Assert.Contains(notes, n => n.Contains("torchsharp-latest: ignored, 'latest' is not a NuGet version"));
    }

    [Fact]
    public void No_built_worker_is_no_runtime_and_a_note()
    {
        var (runtimes, notes) = Discover();
        Assert.Empty(runtimes);
        Assert.Contains("TorchSharp worker is not built: run `make build`", notes);
    }

    [Theory]
    [InlineData("0.107.0", "torchsharp-0.107")]
    [InlineData("0.107.0+a1b2c3", "torchsharp-0.107")]
    [InlineData("0.108.2", "torchsharp-0.108")]
    [InlineData("0.107.1-repack.1", "torchsharp-0.107.1-repack.1")]
    [InlineData("0.108.0-preview.2+a1b2c3", "torchsharp-0.108.0-preview.2")]
    public void A_release_id_is_major_dot_minor_and_a_pre_release_id_keeps_its_version(string version, string id) =>
        Assert.Equal(id, Runtime.MakeId(RuntimeKinds.TorchSharp, version));

    [Fact]
    public void A_pre_release_id_survives_cell_names_and_known_failure_globs()
    {
        Runtime R(string id) => Runtime.Missing(id, "test");
        var cells = Planner.Plan([R("pytorch-2.6"), R("torchsharp-0.107"), R("torchsharp-0.107.1-repack.1")]);

        Assert.Contains(cells, c => c.Name == "lenet/pickle/torchsharp-0.107+pybridge->torchsharp-0.107.1-repack.1+torchcheckpoints/default");
        Assert.Contains(cells, c => c.Name == "lenet/pickle/torchsharp-0.107.1-repack.1+pybridge->torchsharp-0.107+pybridge/default");
        Assert.Contains(cells, c => c.Name == "lenet/torchscript_script/torchsharp-0.107.1-repack.1->torchsharp-0.107/default");
        Assert.Equal("torchsharp-0.107.1-repack.1", Runtime.WithoutLibrary("torchsharp-0.107.1-repack.1+pybridge"));
        Assert.Equal("cuda", Runtime.DeviceOf("torchsharp-0.107.1-repack.1+pybridge-cuda"));
        Assert.Equal("pybridge", Runtime.LibraryOf("torchsharp-0.107.1-repack.1+pybridge-cuda@golden"));
        Assert.All(cells, c => Assert.Equal(c, Cell.Parse(c.Name)));
        var layouts = Cell.Parse("layouts/pickle/torchsharp-0.107.1-repack.1->pytorch-2.6/default");
        Assert.Matches(Glob.ToRegex("layouts/{pickle,safetensors,torchsharp_native}/torchsharp-*->*/*"), layouts.Name);
        Assert.DoesNotMatch(Glob.ToRegex("layouts/pickle/torchsharp-0.107->*/*"), layouts.Name);
    }
}
