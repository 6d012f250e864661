namespace TorchCheckpoints;

/// <summary>
/// How the codec makes and inspects tensors. The zip and pickle layers know tensors only through
/// this class, so they run without libtorch: <see cref="RawTensors"/> keeps bytes in managed memory
/// (for inspection, tests and tools), <see cref="TorchSharpTensors"/> makes TorchSharp tensors.
/// Tensor and storage handles are opaque to the codec (<see cref="object"/>). Public only as the
/// choice a caller passes to <see cref="TorchCheckpoint.Load(string, TensorBackend, CheckpointLimits?)"/>
/// and <c>Save</c> (<see cref="RawTensors.Instance"/>, <see cref="TorchSharpTensors.Instance"/>); its
/// members are the codec's plumbing, internal, and only this library derives from it.
/// </summary>
public abstract class TensorBackend
{
    /// <summary>Only this library's backends derive from it: the members are the codec's plumbing.</summary>
    private protected TensorBackend()
    {
    }

    /// <summary>Allocates the storage a record describes and fills it with the record's bytes
    /// (<see cref="RecordReader.ReadExactly(Span{byte})"/> until <see cref="RecordReader.Remaining"/>
    /// is 0). The codec has checked the request against the file and the limits before this is called;
    /// the CRC is checked after it returns.</summary>
    internal abstract object ReadStorage(StorageRequest request, RecordReader record);

    /// <summary>
    /// Optional: allocates the storage's memory now and returns it with the address of its first
    /// byte, so that the codec fills it after the pickle has been read, on several threads at once
    /// with the other records (and checks each CRC). The memory must stay where it is until the load
    /// returns. Null (the default): <see cref="ReadStorage"/> is called instead.
    /// </summary>
    internal virtual (object Storage, nint Address)? AllocateStorage(StorageRequest request) => null;

    /// <summary>For a backend over a memory map of the file: the storage of a stored record at
    /// <paramref name="fileOffset"/>, used in place, and the address of its first byte; null to read it.</summary>
    internal virtual (object Storage, nint Address)? MapStorage(StorageRequest request, long fileOffset) => null;

    /// <summary>Whether the backend makes tensors of <paramref name="dtype"/> (a safetensors file may hold dtypes torch.save has no storage for).</summary>
    internal virtual bool Holds(TorchDtype dtype) => true;

    /// <summary>Whether mapped records have their CRC checked at load.</summary>
    internal virtual bool VerifyMappedCrc => true;

    /// <summary>A tensor viewing <paramref name="storage"/> (<c>_rebuild_tensor_v2</c>); the layout
    /// has been bounds-checked against the storage.</summary>
    internal abstract object CreateTensor(object storage, TensorLayout layout);

    /// <summary>A tensor's elements, contiguous, row-major and little-endian, in a new array: for a
    /// tensor saved with its conj or neg bit, which the codec resolves over a copy. The storage it views
    /// has been filled. The default throws <see cref="NotSupportedException"/>, and such a file is refused.</summary>
    internal virtual byte[] ContiguousBytes(object tensor) =>
        throw new NotSupportedException($"{GetType().Name} does not give a tensor's bytes (ContiguousBytes)");

    /// <summary>A new tensor of <paramref name="dtype"/> and <paramref name="shape"/> holding
    /// <paramref name="bytes"/> (contiguous, row-major, little-endian): a conj or neg tensor once resolved.</summary>
    internal virtual object FromContiguousBytes(TorchDtype dtype, long[] shape, byte[] bytes, bool requiresGrad) =>
        throw new NotSupportedException($"{GetType().Name} does not make a tensor from bytes (FromContiguousBytes)");

    /// <summary>The tensor as an <c>nn.Parameter</c> (<c>_rebuild_parameter</c>); returns the
    /// tensor to use in its place.</summary>
    internal abstract object AsParameter(object tensor, bool requiresGrad);

    /// <summary>Releases a storage once every tensor over it has been made (the tensors keep what
    /// they need), or after a failed load.</summary>
    internal virtual void ReleaseStorage(object storage)
    {
    }

    /// <summary>Releases a tensor made by a load that then failed.</summary>
    internal virtual void ReleaseTensor(object tensor)
    {
    }

    /// <summary>Whether a value to save is one of this backend's tensors.</summary>
    internal abstract bool IsTensor(object value);

    /// <summary>The dtype, shape and size of a tensor to save, and what identifies its memory:
    /// tensors with equal <see cref="TensorInfo.Identity"/> are written as one storage (tied weights).</summary>
    internal abstract TensorInfo Describe(object tensor);

    /// <summary>Writes the tensor's elements, contiguous and row-major, <see cref="TensorInfo.ByteCount"/> bytes in all.</summary>
    internal abstract void WriteContiguous(object tensor, RecordWriter destination);
}
