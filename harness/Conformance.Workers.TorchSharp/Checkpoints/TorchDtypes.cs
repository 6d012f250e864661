using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// The dtypes a checkpoint can hold and their three names: the TorchSharp scalar type, the
/// legacy typed-storage class that torch.save puts in each persistent id (<c>torch.FloatStorage</c>),
/// and the <c>torch.float32</c> spelling used in messages.
/// </summary>
internal static class TorchDtypes
{
    internal sealed record Info(ScalarType Type, string StorageClass, string TorchName, int ElementSize);

    private static readonly Info[] All =
    {
        new(ScalarType.Float32, "FloatStorage", "torch.float32", 4),
        new(ScalarType.Float64, "DoubleStorage", "torch.float64", 8),
        new(ScalarType.Float16, "HalfStorage", "torch.float16", 2),
        new(ScalarType.BFloat16, "BFloat16Storage", "torch.bfloat16", 2),
        new(ScalarType.Int64, "LongStorage", "torch.int64", 8),
        new(ScalarType.Int32, "IntStorage", "torch.int32", 4),
        new(ScalarType.Int16, "ShortStorage", "torch.int16", 2),
        new(ScalarType.Int8, "CharStorage", "torch.int8", 1),
        new(ScalarType.Byte, "ByteStorage", "torch.uint8", 1),
        new(ScalarType.Bool, "BoolStorage", "torch.bool", 1),
        new(ScalarType.ComplexFloat32, "ComplexFloatStorage", "torch.complex64", 8),
        new(ScalarType.ComplexFloat64, "ComplexDoubleStorage", "torch.complex128", 16),
    };

    /// <summary>The storage classes, as the globals the pickle names (<c>torch.FloatStorage</c>).</summary>
    public static IEnumerable<string> StorageGlobals => All.Select(i => "torch." + i.StorageClass);

    public static Info? FromStorageClass(string storageClass) => All.FirstOrDefault(i => i.StorageClass == storageClass);

    public static Info? FromScalarType(ScalarType type) => All.FirstOrDefault(i => i.Type == type);
}
