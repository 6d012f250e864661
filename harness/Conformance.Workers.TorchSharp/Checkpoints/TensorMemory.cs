using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// Raw access to a CPU tensor's memory, so records are streamed straight between the file and the
/// tensor. TorchSharp's <c>Tensor.bytes</c> is a single span and stops at 2 GiB; this hands out
/// chunks of any tensor instead, and gives the address that identifies tied tensors.
/// </summary>
internal static unsafe class TensorMemory
{
    /// <summary>The size of one chunk: small enough to stay in cache between the CRC and the copy.</summary>
    public const int ChunkBytes = 1 << 20;

    /// <summary>The address of the tensor's first element (at its storage offset), or null when it
    /// has no elements. The tensor must be on the CPU; it need not be contiguous.</summary>
    public static byte* FirstElement(Tensor tensor)
    {
        if (tensor.NumberOfElements == 0)
            return null;
        // A one-element view at the same storage offset is contiguous, so its bytes span is allowed.
        using var first = tensor.as_strided(new long[] { 1 }, new long[] { 1 }, tensor.storage_offset());
        return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }

    /// <summary>The byte count of a tensor's elements (not of its whole storage).</summary>
    public static long ByteCount(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;

    /// <summary>Bytes [offset, offset + length) of the memory that starts at <paramref name="start"/>.</summary>
    public static Span<byte> Slice(byte* start, long offset, int length) => new(start + offset, length);
}
