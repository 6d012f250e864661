namespace TorchCheckpoints;

/// <summary>
/// A dtype a checkpoint can hold, under its three names: the legacy typed-storage class that
/// torch.save puts in each persistent id (<c>torch.FloatStorage</c>), the <c>torch.float32</c>
/// spelling used in messages, and its element size. Independent of TorchSharp, so the zip and
/// pickle layers run without libtorch.
/// </summary>
/// <param name="StorageClass">The class name in the pickle's persistent id, without <c>torch.</c>.</param>
/// <param name="Name">PyTorch's name, <c>torch.float32</c>.</param>
/// <param name="ElementSize">Bytes per element.</param>
public sealed record TorchDtype(string StorageClass, string Name, int ElementSize)
{
    /// <summary><c>torch.float32</c>, saved as <c>torch.FloatStorage</c>.</summary>
    public static readonly TorchDtype Float32 = new("FloatStorage", "torch.float32", 4);
    /// <summary><c>torch.float64</c>, saved as <c>torch.DoubleStorage</c>.</summary>
    public static readonly TorchDtype Float64 = new("DoubleStorage", "torch.float64", 8);
    /// <summary><c>torch.float16</c>, saved as <c>torch.HalfStorage</c>.</summary>
    public static readonly TorchDtype Float16 = new("HalfStorage", "torch.float16", 2);
    /// <summary><c>torch.bfloat16</c>, saved as <c>torch.BFloat16Storage</c>.</summary>
    public static readonly TorchDtype BFloat16 = new("BFloat16Storage", "torch.bfloat16", 2);
    /// <summary><c>torch.int64</c>, saved as <c>torch.LongStorage</c>.</summary>
    public static readonly TorchDtype Int64 = new("LongStorage", "torch.int64", 8);
    /// <summary><c>torch.int32</c>, saved as <c>torch.IntStorage</c>.</summary>
    public static readonly TorchDtype Int32 = new("IntStorage", "torch.int32", 4);
    /// <summary><c>torch.int16</c>, saved as <c>torch.ShortStorage</c>.</summary>
    public static readonly TorchDtype Int16 = new("ShortStorage", "torch.int16", 2);
    /// <summary><c>torch.int8</c>, saved as <c>torch.CharStorage</c>.</summary>
    public static readonly TorchDtype Int8 = new("CharStorage", "torch.int8", 1);
    /// <summary><c>torch.uint8</c>, saved as <c>torch.ByteStorage</c>.</summary>
    public static readonly TorchDtype UInt8 = new("ByteStorage", "torch.uint8", 1);
    /// <summary><c>torch.bool</c>, saved as <c>torch.BoolStorage</c>.</summary>
    public static readonly TorchDtype Bool = new("BoolStorage", "torch.bool", 1);
    /// <summary><c>torch.complex64</c>, saved as <c>torch.ComplexFloatStorage</c>.</summary>
    public static readonly TorchDtype Complex64 = new("ComplexFloatStorage", "torch.complex64", 8);
    /// <summary><c>torch.complex128</c>, saved as <c>torch.ComplexDoubleStorage</c>.</summary>
    public static readonly TorchDtype Complex128 = new("ComplexDoubleStorage", "torch.complex128", 16);

    /// <summary>Every dtype the codec reads and writes.</summary>
    public static IReadOnlyList<TorchDtype> All { get; } =
        [Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool, Complex64, Complex128];

    /// <summary>The storage classes, as the globals the pickle names (<c>torch.FloatStorage</c>).</summary>
    public static IEnumerable<string> StorageGlobals => All.Select(d => "torch." + d.StorageClass);

    /// <summary>The dtype of a storage class such as <c>FloatStorage</c>, or null.</summary>
    public static TorchDtype? FromStorageClass(string storageClass) => All.FirstOrDefault(d => d.StorageClass == storageClass);

    /// <summary>The dtype called <c>torch.float32</c> (or <c>float32</c>), or null.</summary>
    public static TorchDtype? FromName(string name) =>
        All.FirstOrDefault(d => d.Name == name || d.Name == "torch." + name);

    /// <summary>PyTorch's name, <c>torch.float32</c>.</summary>
    public override string ToString() => Name;
}
