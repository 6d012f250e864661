using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary><c>TorchCheckpoint.Save(..., durable: false)</c>: the same file as a durable save, written
/// beside its name and renamed into place (no temporary left), only without the fsync.</summary>
[Trait("Category", "unit")]
public sealed class SaveDurabilitySpecs
{
    [Fact]
    public void A_save_without_fsync_writes_the_same_bytes_and_leaves_no_temporary()
    {
        var dir = Directory.CreateTempSubdirectory("durable-").FullName;
        try
        {
            var sd = new PyDict(ordered: true) { { "w", RawTensor.FromArray([1f, 2f, 3f, 4f], [2, 2], TorchDtype.Float32) } };
            var durable = Path.Combine(dir, "durable.pt");
            var fast = Path.Combine(dir, "fast.pt");
            TorchCheckpoint.Save(durable, sd, RawTensors.Instance);
            TorchCheckpoint.Save(fast, sd, RawTensors.Instance, durable: false);
            Assert.Equal(File.ReadAllBytes(durable), File.ReadAllBytes(fast));
            var loaded = (PyDict)TorchCheckpoint.Load(fast, RawTensors.Instance).Value!;
            Assert.Equal([1f, 2f, 3f, 4f], ((RawTensor)loaded["w"]!).ToArray<float>());
            Assert.Equal(["durable.pt", "fast.pt"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
