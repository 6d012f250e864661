using static TorchSharp.torch;

#pragma warning disable CS1591 // internal type: the overrides are documented on TensorBackend

namespace TorchCheckpoints;

/// <summary>
/// TorchSharp tensors backed by a private memory map of the checkpoint (libtorch's from_file):
/// each stored record becomes a view of the mapping, so loading copies nothing and pages come in as
/// they are touched, like <c>torch.load(mmap=True)</c>. Writes to the tensors stay in memory
/// (copy-on-write); the file is never changed. Deflated records, or ones not aligned to their
/// element size, are read into memory as usual.
/// </summary>
internal sealed class MappedTensors : TensorBackend, IDisposable
{
    private readonly string _path;
    private readonly long _length;
    private readonly bool _verifyCrc;
    // One mapping of the whole file per dtype: TorchSharp has no view(dtype), and every record is
    // aligned (torch.save and this codec align to 64 bytes), so each lies at a whole element offset.
    private readonly Dictionary<TorchDtype, Tensor> _mappings = new();

    public MappedTensors(string path, long length, bool verifyCrc)
    {
        _path = path;
        _length = length;
        _verifyCrc = verifyCrc;
    }

    private Tensor Mapping(TorchDtype dtype)
    {
        if (!_mappings.TryGetValue(dtype, out var mapping))
        {
            mapping = from_file(_path, shared: false, size: _length / dtype.ElementSize, dtype: TorchSharpTensors.ToScalarType(dtype));
            _mappings.Add(dtype, mapping);
        }
        return mapping;
    }

    internal override unsafe (object Storage, nint Address)? MapStorage(StorageRequest request, long fileOffset)
    {
        if (fileOffset % request.Dtype.ElementSize != 0 || request.ByteCount == 0)
            return null;
        var storage = Mapping(request.Dtype).narrow(0, fileOffset / request.Dtype.ElementSize, request.ElementCount);
        return (storage, (nint)TorchSharpTensors.FirstElement(storage));
    }

    internal override bool VerifyMappedCrc => _verifyCrc;

    /// <summary>A record that cannot be mapped (deflated, unaligned, empty) is read into memory.</summary>
    internal override object ReadStorage(StorageRequest request, RecordReader record) => TorchSharpTensors.Instance.ReadStorage(request, record);

    internal override object CreateTensor(object storage, TensorLayout layout) => TorchSharpTensors.Instance.CreateTensor(storage, layout);

    internal override object AsParameter(object tensor, bool requiresGrad) => TorchSharpTensors.Instance.AsParameter(tensor, requiresGrad);

    /// <summary>A conj or neg tensor is resolved into memory of its own: the mapping is private but shared by every view of the record.</summary>
    internal override byte[] ContiguousBytes(object tensor) => TorchSharpTensors.Instance.ContiguousBytes(tensor);

    internal override object FromContiguousBytes(TorchDtype dtype, long[] shape, byte[] bytes, bool requiresGrad) =>
        TorchSharpTensors.Instance.FromContiguousBytes(dtype, shape, bytes, requiresGrad);

    internal override void ReleaseStorage(object storage) => TorchSharpTensors.Instance.ReleaseStorage(storage);

    internal override void ReleaseTensor(object tensor) => TorchSharpTensors.Instance.ReleaseTensor(tensor);

    internal override bool IsTensor(object value) => TorchSharpTensors.Instance.IsTensor(value);

    internal override TensorInfo Describe(object tensor) => TorchSharpTensors.Instance.Describe(tensor);

    internal override void WriteContiguous(object tensor, RecordWriter destination) => TorchSharpTensors.Instance.WriteContiguous(tensor, destination);

    public void Dispose()
    {
        foreach (var mapping in _mappings.Values)
            mapping.Dispose();
    }
}
