using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TorchCheckpoints;

/// <summary>A storage's bytes in managed memory, as <see cref="RawTensors"/> reads them.</summary>
public sealed class RawStorage
{
    /// <summary>A storage of <paramref name="dtype"/> over <paramref name="bytes"/> (not copied).</summary>
    public RawStorage(TorchDtype dtype, byte[] bytes)
    {
        if (bytes.Length % dtype.ElementSize != 0)
            throw new ArgumentException($"{bytes.Length} bytes are not a whole number of {dtype.Name} elements", nameof(bytes));
        Dtype = dtype;
        Bytes = bytes;
    }

    /// <summary>The dtype of its elements.</summary>
    public TorchDtype Dtype { get; }

    /// <summary>The storage's bytes, little-endian.</summary>
    public byte[] Bytes { get; }

    /// <summary>Elements in the storage.</summary>
    public long ElementCount => Bytes.Length / Dtype.ElementSize;

    /// <summary>Where it was saved from (<c>cpu</c>, <c>cuda:0</c>), when read from a file.</summary>
    public string Location { get; init; } = "cpu";
}
