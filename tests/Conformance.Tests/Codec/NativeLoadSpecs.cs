using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// Where TorchSharp's native library cannot load (this project's Debian 12 host: its libstdc++ stops
/// at GLIBCXX_3.4.30, LibTorchSharp needs 3.4.32), a load into TorchSharp tensors says what to reference
/// and what the system lacks, in a documented exception, instead of TorchSharp's TypeInitializationException.
/// </summary>
[Trait("Category", "unit")]
public sealed class NativeLoadSpecs
{
    [SkippableFact]
    public void A_load_where_TorchSharp_cannot_load_names_the_libtorch_package_and_the_GLIBCXX_requirement()
    {
        var fixture = Path.Combine(Conformance.Orchestrator.Runtimes.RepoLayout.Find().FixturesDir, "pytorch-2.6", "lenet.pickle.pt");
        TorchSharpUnavailableException? error = null;
        try { TorchCheckpoint.Load(fixture); }
        catch (TorchSharpUnavailableException e) { error = e; }
        Skip.If(error is null, "TorchSharp's native library loads in this process: nothing to diagnose here");
        Assert.Contains(TorchSharpUnavailableException.LibTorchPackage, error!.Message);
        Assert.Contains("GLIBCXX_3.4.32", error.Message);
        Assert.Contains("RawTensors.Instance", error.Message);
        Assert.NotNull(error.InnerException);
        // The same file reads without libtorch.
        Assert.NotNull(TorchCheckpoint.Load(fixture, RawTensors.Instance).Value);
    }
}
