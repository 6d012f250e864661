using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TorchCheckpoints;

/// <summary>
/// A tensor as a view of a <see cref="RawStorage"/>: what a checkpoint holds, without libtorch.
/// Tensors that shared a storage in the file share one <see cref="RawStorage"/>.
/// </summary>
public sealed class RawTensor
{
    /// <summary>A view of <paramref name="storage"/>: offset, shape and stride in elements.</summary>
    public RawTensor(RawStorage storage, long storageOffset, long[] shape, long[] stride, bool requiresGrad = false)
    {
        Storage = storage;
        StorageOffset = storageOffset;
        Shape = shape;
        Stride = stride;
        RequiresGrad = requiresGrad;
    }

    /// <summary>A contiguous tensor over a copy of <paramref name="values"/>.</summary>
    public static RawTensor FromArray<T>(T[] values, long[] shape, TorchDtype dtype) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        return new RawTensor(new RawStorage(dtype, bytes), 0, shape, TensorLayout.ContiguousStride(shape));
    }

    /// <summary>The storage it views (shared with tensors that shared it in the file).</summary>
    public RawStorage Storage { get; }

    /// <summary>The dtype of its elements.</summary>
    public TorchDtype Dtype => Storage.Dtype;

    /// <summary>Where it starts in the storage, in elements.</summary>
    public long StorageOffset { get; }

    /// <summary>Its shape.</summary>
    public long[] Shape { get; }

    /// <summary>Its strides, in elements.</summary>
    public long[] Stride { get; }

    /// <summary>Whether it was saved with requires_grad.</summary>
    public bool RequiresGrad { get; }

    /// <summary>Whether it was saved as an <c>nn.Parameter</c>.</summary>
    public bool IsParameter { get; init; }

    /// <summary>Elements in the tensor.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The elements in row-major order, little-endian, as torch.save writes them.</summary>
    public byte[] ToContiguousBytes()
    {
        int size = Dtype.ElementSize;
        var result = new byte[checked(ElementCount * size)];
        if (result.Length == 0)
            return result;
        if (Stride.SequenceEqual(TensorLayout.ContiguousStride(Shape)))
        {
            Buffer.BlockCopy(Storage.Bytes, checked((int)(StorageOffset * size)), result, 0, result.Length);
            return result;
        }
        var index = new long[Shape.Length];
        for (long n = 0; n < ElementCount; n++)
        {
            long element = StorageOffset;
            for (int d = 0; d < Shape.Length; d++)
                element += index[d] * Stride[d];
            Buffer.BlockCopy(Storage.Bytes, (int)(element * size), result, (int)(n * size), size);
            for (int d = Shape.Length - 1; d >= 0; d--)
            {
                if (++index[d] < Shape[d])
                    break;
                index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>The elements in row-major order as <typeparamref name="T"/> (of the dtype's size).</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        if (Marshal.SizeOf<T>() != Dtype.ElementSize)
            throw new InvalidOperationException($"{typeof(T).Name} is not the size of {Dtype.Name}");
        return MemoryMarshal.Cast<byte, T>(ToContiguousBytes()).ToArray();
    }

    /// <inheritdoc/>
    /// <summary>Dtype and shape, as messages show a tensor.</summary>
    public override string ToString() => $"tensor {Dtype.Name} [{string.Join(", ", Shape)}]";
}
