using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>
/// The TorchSharp adapter: storages become 1-D CPU tensors filled straight from the file, tensors
/// become <c>as_strided</c> views of them (so tied weights share memory again), and tensors to save
/// are streamed from their memory, made contiguous and CPU-resident first when need be.
/// </summary>
public sealed class TorchSharpTensors : TensorBackend
{
    /// <summary>The one instance; the backend holds no state.</summary>
    public static TorchSharpTensors Instance { get; } = new();

    // Whether TorchSharp's native library loads here, tried once: its own failure is a TypeInitializationException
    // whose message blames a package reference even when the system's libstdc++ is what is missing.
    private static readonly Lazy<Exception?> NativeError = new(() =>
    {
        try
        {
            using var probe = empty(0);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or NotSupportedException)
        {
            return e;
        }
    });

    /// <summary>Throws <see cref="TorchSharpUnavailableException"/>, saying what to reference, when TorchSharp's native library does not load.</summary>
    private static void EnsureNative()
    {
        if (NativeError.Value is { } cause) throw new TorchSharpUnavailableException(cause);
    }

    // The dtype table's c10::ScalarType member names, which TorchSharp's ScalarType mirrors: every
    // dtype with a storage class, and those safetensors adds where this TorchSharp has them.
    private static readonly (TorchDtype Dtype, ScalarType Type)[] Types =
        TorchDtype.WithSafetensors.Where(d => TorchDtype.All.Contains(d) || Enum.IsDefined(typeof(ScalarType), d.ScalarTypeName))
            .Select(d => (d, Enum.Parse<ScalarType>(d.ScalarTypeName))).ToArray();

    /// <summary>TorchSharp's scalar type for a checkpoint dtype; <see cref="NotSupportedException"/> when this TorchSharp has none.</summary>
    public static ScalarType ToScalarType(TorchDtype dtype) =>
        Types.FirstOrDefault(t => t.Dtype == dtype) is { Dtype: not null } found ? found.Type
            : throw new NotSupportedException($"this TorchSharp has no scalar type for {dtype.Name}");

    /// <inheritdoc/>
    internal override bool Holds(TorchDtype dtype) => Types.Any(t => t.Dtype == dtype);

    /// <summary>The checkpoint dtype of a TorchSharp scalar type, or null when torch.save has no storage class for it.</summary>
    public static TorchDtype? FromScalarType(ScalarType type) => Types.FirstOrDefault(t => t.Type == type).Dtype;

    /// <inheritdoc/>
    internal override unsafe object ReadStorage(StorageRequest request, RecordReader record)
    {
        EnsureNative();
        var storage = empty(new[] { request.ElementCount }, ToScalarType(request.Dtype));
        try
        {
            var start = FirstElement(storage);
            record.ReadExactly(start, request.ByteCount);
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    internal override unsafe (object Storage, nint Address)? AllocateStorage(StorageRequest request)
    {
        EnsureNative();
        var storage = empty(new[] { request.ElementCount }, ToScalarType(request.Dtype));
        var start = FirstElement(storage);
        return (storage, (nint)start);
    }

    /// <inheritdoc/>
    internal override object CreateTensor(object storage, TensorLayout layout)
    {
        // as_strided's offset counts from the start of the underlying storage, which for a mapped
        // record is the start of the file: add the record's own offset.
        var data = (Tensor)storage;
        var view = data.as_strided(layout.Shape, layout.Stride, data.storage_offset() + layout.StorageOffset);
        if (layout.RequiresGrad)
            view.requires_grad = true;
        return view;
    }

    /// <inheritdoc/>
    internal override unsafe byte[] ContiguousBytes(object tensor)
    {
        using var resolved = Resolved((Tensor)tensor);
        using var contiguous = resolved.contiguous();
        long length = contiguous.NumberOfElements * contiguous.ElementSize;
        if (length > Array.MaxLength)
            throw new NotSupportedException($"a tensor of {length:N0} bytes does not fit in one array");
        var bytes = new byte[length];
        if (length > 0)
            new ReadOnlySpan<byte>(FirstElement(contiguous), (int)length).CopyTo(bytes);
        return bytes;
    }

    /// <inheritdoc/>
    internal override unsafe object FromContiguousBytes(TorchDtype dtype, long[] shape, byte[] bytes, bool requiresGrad)
    {
        var tensor = empty(shape, ToScalarType(dtype));
        if (bytes.Length > 0)
            bytes.CopyTo(new Span<byte>(FirstElement(tensor), bytes.Length));
        if (requiresGrad)
            tensor.requires_grad = true;
        return tensor;
    }

    /// <inheritdoc/>
    internal override object AsParameter(object tensor, bool requiresGrad)
    {
        var t = (Tensor)tensor;
        if (requiresGrad)
            t.requires_grad = true;
        return t;
    }

    /// <inheritdoc/>
    internal override void ReleaseStorage(object storage) => ((Tensor)storage).Dispose();

    /// <inheritdoc/>
    internal override void ReleaseTensor(object tensor) => ((Tensor)tensor).Dispose();

    /// <inheritdoc/>
    internal override bool IsTensor(object value) => value is Tensor;

    /// <inheritdoc/>
    internal override unsafe TensorInfo Describe(object tensor)
    {
        var t = (Tensor)tensor;
        var dtype = FromScalarType(t.dtype);
        object? identity = t.NumberOfElements > 0 && t.device_type == DeviceType.CPU
            ? ((nint)FirstElement(t), t.dtype, string.Join(",", t.shape), string.Join(",", t.stride()))
            : null;
        return new TensorInfo(dtype, t.dtype.ToString(), t.shape, identity);
    }

    /// <inheritdoc/>
    internal override unsafe void WriteContiguous(object tensor, RecordWriter destination)
    {
        var t = (Tensor)tensor;
        using var cpu = t.cpu();
        using var resolved = Resolved(cpu);
        using var contiguous = resolved.contiguous();
        destination.Write(FirstElement(contiguous), contiguous.NumberOfElements * contiguous.ElementSize);
    }

    /// <summary>
    /// The tensor's values as torch.save stores them: a conjugate or negative view (libtorch's conj and neg bits,
    /// <c>x.conj()</c>) resolved into memory of its own, since <c>contiguous()</c> keeps the bit and the storage
    /// beneath holds the values before it; a copy of the raw storage would read as other values.
    /// </summary>
    private static Tensor Resolved(Tensor t) => t.is_conj() || t.is_neg() ? t.resolve_conj().resolve_neg() : t.alias();

    /// <summary>The address of the tensor's first element (at its storage offset), or null when it
    /// has no elements. The tensor must be on the CPU; it need not be contiguous. TorchSharp's
    /// <c>Tensor.bytes</c> is a single span and stops at 2 GiB; a one-element view is always allowed.</summary>
    /// <summary>The address of a CPU tensor's first element (at its storage offset), or 0 when it
    /// has no elements: for callers that stream a tensor's memory themselves.</summary>
    internal static unsafe nint FirstElementPointer(Tensor tensor) => (nint)FirstElement(tensor);

    internal static unsafe byte* FirstElement(Tensor tensor)
    {
        if (tensor.NumberOfElements == 0)
            return null;
        using var first = tensor.as_strided(new long[] { 1 }, new long[] { 1 }, tensor.storage_offset());
        return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }
}
