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

/// <summary>
/// Tensors in managed memory (<see cref="RawTensor"/>): reads and writes checkpoints without
/// libtorch, for inspection and tools. A storage is one array, so at most 2 GiB; larger ones are
/// refused with <see cref="CheckpointLimitException"/>.
/// </summary>
public sealed class RawTensors : TensorBackend
{
    /// <summary>The one instance; the backend holds no state.</summary>
    public static RawTensors Instance { get; } = new();

    /// <inheritdoc/>
    public override object ReadStorage(StorageRequest request, RecordReader record)
    {
        if (request.ByteCount > Array.MaxLength)
            throw new CheckpointLimitException("", request.Entry, "Array.MaxLength", Array.MaxLength, request.ByteCount,
                $"storage '{request.Key}' (RawTensors keeps a storage in one array)");
        var bytes = new byte[request.ByteCount];
        unsafe
        {
            fixed (byte* destination = bytes)
                record.ReadExactly(destination, bytes.Length);
        }
        return new RawStorage(request.Dtype, bytes) { Location = request.Location };
    }

    /// <inheritdoc/>
    public override unsafe (object Storage, nint Address)? AllocateStorage(StorageRequest request)
    {
        if (request.ByteCount > Array.MaxLength)
            throw new CheckpointLimitException("", request.Entry, "Array.MaxLength", Array.MaxLength, request.ByteCount,
                $"storage '{request.Key}' (RawTensors keeps a storage in one array)");
        var bytes = GC.AllocateUninitializedArray<byte>((int)request.ByteCount, pinned: true);
        return (new RawStorage(request.Dtype, bytes) { Location = request.Location }, bytes.Length == 0 ? 0 : (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(bytes)));
    }

    /// <inheritdoc/>
    public override object CreateTensor(object storage, TensorLayout layout) =>
        new RawTensor((RawStorage)storage, layout.StorageOffset, layout.Shape, layout.Stride, layout.RequiresGrad);

    /// <inheritdoc/>
    public override byte[] ContiguousBytes(object tensor) => ((RawTensor)tensor).ToContiguousBytes();

    /// <inheritdoc/>
    public override object FromContiguousBytes(TorchDtype dtype, long[] shape, byte[] bytes, bool requiresGrad) =>
        new RawTensor(new RawStorage(dtype, bytes), 0, shape, TensorLayout.ContiguousStride(shape), requiresGrad);

    /// <inheritdoc/>
    public override object AsParameter(object tensor, bool requiresGrad)
    {
        var t = (RawTensor)tensor;
        return new RawTensor(t.Storage, t.StorageOffset, t.Shape, t.Stride, requiresGrad) { IsParameter = true };
    }

    /// <inheritdoc/>
    public override bool IsTensor(object value) => value is RawTensor;

    /// <inheritdoc/>
    public override TensorInfo Describe(object tensor)
    {
        var t = (RawTensor)tensor;
        return new TensorInfo(t.Dtype, t.Dtype.Name, t.Shape, (t.Storage, t.StorageOffset, string.Join(",", t.Shape), string.Join(",", t.Stride)));
    }

    /// <inheritdoc/>
    public override unsafe void WriteContiguous(object tensor, RecordWriter destination)
    {
        var bytes = ((RawTensor)tensor).ToContiguousBytes();
        fixed (byte* source = bytes)
            destination.Write(source, bytes.Length);
    }
}
