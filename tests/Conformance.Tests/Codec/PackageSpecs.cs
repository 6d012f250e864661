using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests.Codec;

/// <summary>
/// The codec as a package: `dotnet pack` makes the nupkg; a project that references only that
/// package (tests/PackageConsumer) restores from the feed, builds, and loads a PyTorch 2.14 training
/// checkpoint with its Adam state into TorchSharp, in the rootfs where TorchSharp runs (and memory-mapped). Every tensor,
/// moment buffer, step count and hyperparameter is compared with what PyTorch recorded when it saved.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class PackageSpecs
{
    private static readonly string Repo = RepoLayout.Find().Root;

    private static string Run(string file, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? Repo };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(" ", arguments)} exited {p.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }

    [SkippableFact]
    public void A_project_referencing_only_the_package_loads_a_PyTorch_checkpoint_with_optimizer_state()
    {
        var ts = MatrixFixture.Suite.Runtimes.FirstOrDefault(r => r.Kind == RuntimeKinds.TorchSharp && r.Available);
        MatrixFixture.SkipOrFailWhenMissing(ts is null ? "needs the TorchSharp runtime (its rootfs and libtorch)" : null);
        var rootfs = ts!.Launch!.Command[1]; // chroot ROOTFS dotnet WORKER.dll
        var native = Path.Combine(Path.GetDirectoryName(ts.Launch.Command[^1])!, "runtimes", "linux-x64", "native");
        Assert.True(File.Exists(Path.Combine(native, "libtorch.so")), $"no libtorch in {native}");

        var dir = Path.Combine(Repo, "artifacts", "tests", "package");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Run("dotnet", ["pack", "harness/TorchCheckpoints", "-c", TestPaths.Configuration, "--no-build", "--nologo", "-o", Path.Combine(dir, "feed")]);
        var nupkg = Assert.Single(Directory.GetFiles(Path.Combine(dir, "feed"), "TorchCheckpoints.*.nupkg"));
        Run("dotnet", ["build", "tests/PackageConsumer", "-c", "Release", "--nologo", "-o", Path.Combine(dir, "bin"),
            $"-p:RestorePackagesPath={Path.Combine(dir, "packages")}",
            $"-p:RestoreFallbackFolders={Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages")}",
            $"-p:RestoreAdditionalProjectSources={Path.Combine(dir, "feed")}"]);
        // The consumer has the package's assembly, not the source: the restored package is the one packed.
        Assert.True(File.Exists(Path.Combine(dir, "packages", "torchcheckpoints", "0.1.0", Path.GetFileName(nupkg).ToLowerInvariant())), "the package was not restored from the feed");
        Assert.False(File.Exists(Path.Combine(dir, "bin", "Conformance.Workers.TorchSharp.dll")));

        // torch 2.14's Adam group holds keys TorchSharp has no option for (foreach, capturable, differentiable, fused, decoupled_weight_decay).
        var fixture = Path.Combine(Repo, "fixtures", "pytorch-2.14", "ckpt_adam.checkpoint.pt");
        var json = JsonNode.Parse(Run("chroot", [rootfs, "env", $"LD_LIBRARY_PATH={native}", "dotnet", Path.Combine(dir, "bin", "PackageConsumer.dll"), fixture, "Adam"]))!;
        var saved = JsonNode.Parse(File.ReadAllText(Path.ChangeExtension(fixture, ".json")))!["observation"]!;

        Assert.Equal((double)saved["epoch"]!, (double)json["epoch"]!);
        foreach (var t in saved["tensors"]!.AsArray())
        {
            Assert.Equal((string)t!["sha256"]!, (string)json["tensors"]![(string)t["key"]!]!);
            Assert.Equal((string)t["sha256"]!, (string)json["mapped"]![$"crc.{(string)t["key"]!}"]!);
            Assert.Equal((string)t["sha256"]!, (string)json["mapped"]![$"nocrc.{(string)t["key"]!}"]!);
        }
        Assert.Contains("is corrupted: its CRC-32 is", (string)json["mapped_corrupt_refusal"]!);
        int compared = 0;
        foreach (var p in saved["optimizer"]!["state"]!.AsArray())
            foreach (var e in p!["entries"]!.AsArray())
            {
                var got = json["optimizer_state"]![$"{(int)p["param"]!}.{(string)e!["key"]!}"]!;
                if (e["sha256"] is { } sha) Assert.Equal((string)sha!, (string)got!);
                else Assert.Equal((double)e["value"]!, (double)got!);
                compared++;
            }
        Assert.Equal(12, compared);
        var group = saved["optimizer"]!["param_groups"]![0]!;
        foreach (var key in new[] { "lr", "eps", "weight_decay" })
            Assert.Equal((double)group[key]!, (double)json["param_group"]![key]!);
        foreach (var key in new[] { "amsgrad", "maximize" })
            Assert.Equal((bool)group[key]!, (bool)json["param_group"]![key]!);
        // Loaded and saved again, the optimizer state keeps every param-group key PyTorch wrote, with its value.
        var written = json["param_group"]!.AsObject();
        foreach (var (key, value) in group.AsObject().Where(kv => kv.Key != "params"))
        {
            Assert.True(written.ContainsKey(key), $"param_groups[0].{key} was dropped by StateDict");
            Assert.True(SameValue(value, written[key]), $"param_groups[0].{key}: {value?.ToJsonString() ?? "null"} became {written[key]?.ToJsonString() ?? "null"}");
        }
        Assert.Contains("decoupled_weight_decay", written.Select(kv => kv.Key));
        Assert.True((bool)json["trained_on"]!, "a parameter lost requires_grad after the load");
        // save_pytorch, StateDict.Load and load_pytorch: the loaded model's tensors (the checkpoint's) back, bit for bit, in order.
        var roundtrip = json["state_dict_roundtrip"]!.AsObject();
        Assert.Equal(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], roundtrip.Select(kv => kv.Key));
        Assert.Equal(roundtrip.ToJsonString(), json["state_dict_reloaded"]!.ToJsonString());
        Assert.Equal(json["tensors"]!.ToJsonString(), roundtrip.ToJsonString());
        var mismatch = (string)json["state_dict_mismatch"]!;
        Assert.StartsWith("Error(s) in loading state_dict for Net:", mismatch);
        Assert.Contains("size mismatch for fc1.weight: copying a param with shape torch.Size([16, 8]) from checkpoint, the shape in current model is torch.Size([32, 8]).", mismatch);
    }

    /// <summary>JSON values equal as values: numbers by value (1e-07 and 1E-07 alike), arrays element by element.</summary>
    private static bool SameValue(JsonNode? a, JsonNode? b) => (a, b) switch
    {
        (null, null) => true,
        (JsonArray x, JsonArray y) => x.Count == y.Count && x.Zip(y).All(p => SameValue(p.First, p.Second)),
        (JsonValue x, JsonValue y) when x.TryGetValue(out double dx) && y.TryGetValue(out double dy) => dx == dy,
        _ => a?.ToJsonString() == b?.ToJsonString(),
    };
}
