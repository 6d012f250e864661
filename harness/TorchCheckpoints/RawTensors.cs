using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TorchCheckpoints;

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
    internal override object ReadStorage(StorageRequest request, RecordReader record)
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
    internal override unsafe (object Storage, nint Address)? AllocateStorage(StorageRequest request)
    {
        if (request.ByteCount > Array.MaxLength)
            throw new CheckpointLimitException("", request.Entry, "Array.MaxLength", Array.MaxLength, request.ByteCount,
                $"storage '{request.Key}' (RawTensors keeps a storage in one array)");
        var bytes = GC.AllocateUninitializedArray<byte>((int)request.ByteCount, pinned: true);
        return (new RawStorage(request.Dtype, bytes) { Location = request.Location }, bytes.Length == 0 ? 0 : (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(bytes)));
    }

    /// <inheritdoc/>
    internal override object CreateTensor(object storage, TensorLayout layout) =>
        new RawTensor((RawStorage)storage, layout.StorageOffset, layout.Shape, layout.Stride, layout.RequiresGrad);

    /// <inheritdoc/>
    internal override byte[] ContiguousBytes(object tensor) => ((RawTensor)tensor).ToContiguousBytes();

    /// <inheritdoc/>
    internal override object FromContiguousBytes(TorchDtype dtype, long[] shape, byte[] bytes, bool requiresGrad) =>
        new RawTensor(new RawStorage(dtype, bytes), 0, shape, TensorLayout.ContiguousStride(shape), requiresGrad);

    /// <inheritdoc/>
    internal override object AsParameter(object tensor, bool requiresGrad)
    {
        var t = (RawTensor)tensor;
        return new RawTensor(t.Storage, t.StorageOffset, t.Shape, t.Stride, requiresGrad) { IsParameter = true };
    }

    /// <inheritdoc/>
    internal override bool IsTensor(object value) => value is RawTensor;

    /// <inheritdoc/>
    internal override TensorInfo Describe(object tensor)
    {
        var t = (RawTensor)tensor;
        return new TensorInfo(t.Dtype, t.Dtype.Name, t.Shape, (t.Storage, t.StorageOffset, string.Join(",", t.Shape), string.Join(",", t.Stride)));
    }

    /// <inheritdoc/>
    internal override unsafe void WriteContiguous(object tensor, RecordWriter destination)
    {
        var bytes = ((RawTensor)tensor).ToContiguousBytes();
        fixed (byte* source = bytes)
            destination.Write(source, bytes.Length);
    }
}
