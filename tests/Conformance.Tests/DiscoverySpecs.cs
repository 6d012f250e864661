using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

[Trait("Category", "runtime")]
public sealed class DiscoverySpecs
{
    [Theory]
    [InlineData("pytorch", "1.13.0a0", "pytorch-1.13")]
    [InlineData("pytorch", "2.6.0+debian", "pytorch-2.6")]
    [InlineData("pytorch", "2.11.0+cu130", "pytorch-2.11")]
    [InlineData("torchsharp", "0.107.0", "torchsharp-0.107")]
    public void A_runtime_id_is_kind_dash_major_dot_minor(string kind, string version, string id) =>
        Assert.Equal(id, Runtime.MakeId(kind, version));

    [Fact]
    public void The_configuration_file_adds_interpreters_and_declared_runtimes()
    {
        var config = RuntimesConfig.Parse("""
            { "expected": ["pytorch-2.4"], "rootfs": "/srv/r",
              "runtimes": [ { "python": "/opt/venv/bin/python3" },
                            { "id": "pytorch-2.4", "kind": "pytorch", "version": "2.4.1", "command": ["dotnet", "w.dll"], "env": { "A": "1" } } ] }
            """, "runtimes.json");
        Assert.Equal(["pytorch-2.4"], config.Expected);
        Assert.Equal("/srv/r", config.Rootfs);
        Assert.Equal(["/opt/venv/bin/python3"], config.Pythons);
        var r = Assert.Single(config.Runtimes);
        Assert.Equal(("pytorch-2.4", "2.4.1", "cpu", "A=1 dotnet w.dll"), (r.Id, r.Version, r.Device, r.Launch!.Display()));
    }

    [Fact]
    public void A_declared_runtime_whose_id_does_not_begin_with_its_kind_is_refused()
    {
        var e = Assert.Throws<FormatException>(() => RuntimesConfig.Parse(
            """{"runtimes":[{"id":"torch-2.4","kind":"pytorch","version":"2.4","command":["x"]}]}""", "r.json"));
        Assert.Contains("r.json: runtimes[0]: id \"torch-2.4\" must begin with its kind", e.Message);
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task Discovery_finds_every_expected_runtime_or_says_why_not()
    {
        await Task.Yield();
        var repo = RepoLayout.Find();
        var discovery = new Discovery(repo);
        var runtimes = discovery.Discover();
        var expected = RuntimesConfig.Load(repo.RuntimesFile).Expected;
        Assert.All(expected, id => Assert.Contains(runtimes, r => r.Id == id));
        Assert.All(runtimes.Where(r => !r.Available), r => Assert.False(string.IsNullOrWhiteSpace(r.MissingReason)));
        var missing = runtimes.Where(r => !r.Available).ToList();
        if (missing.Count > 0 && Conformance.Orchestrator.Suite.RequireAll)
            Assert.Fail("CONFORMANCE_REQUIRE_ALL=1 but missing: " + string.Join("; ", missing.Select(r => $"{r.Id}: {r.MissingReason}")));
        Skip.If(missing.Count > 0, "missing: " + string.Join("; ", missing.Select(r => $"{r.Id}: {r.MissingReason}")));
        Assert.Contains(runtimes, r => r.Kind == RuntimeKinds.PyTorch);
        Assert.Contains(runtimes, r => r.Kind == RuntimeKinds.TorchSharp);
    }

    [Fact]
    public void The_plan_is_the_product_of_producers_and_consumers_with_a_cell_per_load_mode()
    {
        Runtime R(string id) => Runtime.Missing(id, "test");
        var cells = Planner.Plan([R("pytorch-1.13"), R("pytorch-2.6"), R("torchsharp-0.107")]);
        // lenet via pickle, a state-dict route: TorchSharp once per .NET library, so 4 producers x (6 + 6 + 3 + 3)
        // consumer modes (4 load modes or 1, plus strict_false and shape_mismatch).
        Assert.Equal(72, cells.Count(c => c.Case == "lenet" && c.Route == "pickle"));
        // gru via safetensors: 4 producers x 4 consumers, one mode each.
        Assert.Equal(16, cells.Count(c => c.Case == "gru" && c.Route == "safetensors"));
        Assert.Contains(cells, c => c.Name == "lenet/pickle/torchsharp-0.107+torchcheckpoints->torchsharp-0.107+pybridge/default");
        // TorchScript is TorchSharp's own: the bare runtime, 3 x 3.
        Assert.Equal(9, cells.Count(c => c.Case == "lenet" && c.Route == "torchscript_script"));
        Assert.Contains(cells, c => c.Name == "lenet/torchscript_script/torchsharp-0.107->torchsharp-0.107/default");
        Assert.DoesNotContain(cells, c => c.Route == "torchscript_script" && c.Consumer.Contains('+'));
        Assert.Equal(cells.Count, cells.Select(c => c.Name).Distinct().Count());
        Assert.Throws<InvalidOperationException>(() => Planner.Plan([R("pytorch-2.6"), R("pytorch-2.6")]));
    }
}

[Trait("Category", "runtime")]
public sealed class GoldenFixtureSpecs
{
    [Fact]
    public void Each_golden_fixture_is_one_more_producer_met_by_every_consumer()
    {
        Runtime R(string id) => Runtime.Missing(id, "test");
        var golden = new GoldenFixture("pytorch-1.13", "lenet", "pickle", "/x/fixtures/pytorch-1.13/lenet.pickle.pt");
        var cells = Planner.Plan([R("pytorch-2.6"), R("torchsharp-0.107")], goldens: [golden]);
        var fromGolden = cells.Where(c => c.Producer == "pytorch-1.13@golden").Select(c => c.Name).ToList();
        Assert.Equal(
            ["lenet/pickle/pytorch-1.13@golden->pytorch-2.6/default", "lenet/pickle/pytorch-1.13@golden->pytorch-2.6/weights_only",
             "lenet/pickle/pytorch-1.13@golden->pytorch-2.6/mmap", "lenet/pickle/pytorch-1.13@golden->pytorch-2.6/map_location_cpu",
             "lenet/pickle/pytorch-1.13@golden->pytorch-2.6/strict_false", "lenet/pickle/pytorch-1.13@golden->pytorch-2.6/shape_mismatch",
             "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+pybridge/default", "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+pybridge/strict_false",
             "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+pybridge/shape_mismatch",
             "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+torchcheckpoints/default", "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+torchcheckpoints/strict_false",
             "lenet/pickle/pytorch-1.13@golden->torchsharp-0.107+torchcheckpoints/shape_mismatch"], fromGolden);
        Assert.Equal("/x/fixtures/pytorch-1.13/lenet.pickle.json", golden.ObservationPath);
    }

    [Fact]
    public void The_repository_keeps_golden_fixtures_of_every_expected_producer()
    {
        var repo = RepoLayout.Find();
        var goldens = GoldenFixtures.Find(repo.FixturesDir);
        foreach (var id in RuntimesConfig.Load(repo.RuntimesFile).Expected)
        {
            // A TorchSharp version keeps one set per .NET library for the state-dict routes.
            var sets = id.StartsWith("torchsharp-", StringComparison.Ordinal) ? Catalogue.Libraries.Select(l => $"{id}+{l.Id}").ToArray() : [id];
            foreach (var set in sets) Assert.Contains(goldens, g => g.Producer == set && g.Case == "lenet" && g.Route == "pickle");
        }
        Assert.All(goldens, g => Assert.NotEmpty(g.Expected().Tensors));
    }

    [Fact]
    public void An_interpreter_with_a_cuda_build_of_torch_and_a_gpu_node_reports_cuda_and_a_cpu_build_does_not()
    {
        // A torch package that is only its version.py, as a CUDA wheel writes it; the probe reads, never imports, it.
        var dir = Path.Combine(Path.GetTempPath(), $"conformance-fake-cuda-torch-{Environment.ProcessId}");
        Directory.CreateDirectory(Path.Combine(dir, "torch"));
        File.WriteAllText(Path.Combine(dir, "torch", "__init__.py"), "");
        File.WriteAllText(Path.Combine(dir, "torch", "version.py"), "__version__ = '2.11.0+cu130'\ncuda: Optional[str] = '13.0'\n");
        var wrapper = Path.Combine(dir, "python3");
        File.WriteAllText(wrapper, $"#!/bin/sh\nPYTHONPATH={dir} exec /usr/bin/python3 \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var node = Path.Combine(dir, "nvidiactl");
        File.WriteAllText(node, "");

        try
        {
            var withGpu = Discovery.QueryPython(wrapper, chroot: null, gpuNode: node);
            Assert.Equal("2.11.0+cu130", withGpu.Torch);
            Assert.Equal("13.0", withGpu.Cuda);
            Assert.Equal("pytorch-2.11-cuda", Runtime.MakeId(RuntimeKinds.PyTorch, withGpu.Torch!, "cuda"));
            Assert.Null(Discovery.QueryPython(wrapper, chroot: null, gpuNode: Path.Combine(dir, "absent")).Cuda);
            // The host's Debian torch is a CPU build: no cuda runtime, GPU node or not.
            Assert.Null(Discovery.QueryPython("/usr/bin/python3", chroot: null, gpuNode: node).Cuda);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
