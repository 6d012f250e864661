using System.Text.Json;

namespace TorchCheckpoints;

/// <summary>
/// A dtype a checkpoint can hold, under its three names: the legacy typed-storage class that
/// torch.save puts in each persistent id (<c>torch.FloatStorage</c>), the <c>torch.float32</c>
/// spelling used in messages, and its element size. Independent of TorchSharp, so the zip and
/// pickle layers run without libtorch.
/// </summary>
/// <remarks>
/// The values come from the conformance suite's one dtype table (python/torchconformance/catalogue/dtypes.json),
/// compiled into this assembly as a resource: the package reads no file at run time, and the suite's
/// workers and this codec cannot disagree about a dtype.
/// </remarks>
/// <param name="StorageClass">The class name in the pickle's persistent id, without <c>torch.</c>; empty for the
/// dtypes torch.save has no storage class for (uint16, uint32, uint64, the float8s), which only safetensors files hold.</param>
/// <param name="Name">PyTorch's name, <c>torch.float32</c>.</param>
/// <param name="ElementSize">Bytes per element.</param>
public sealed record TorchDtype(string StorageClass, string Name, int ElementSize)
{
    /// <summary>libtorch's c10::ScalarType member (TorchSharp's ScalarType mirrors it): <c>Float32</c>, <c>Byte</c>.</summary>
    internal string ScalarTypeName { get; init; } = "";

    /// <summary>The safetensors dtype code (<c>F32</c>, <c>BF16</c>, <c>F8_E4M3</c>), or null when the format has none (complex128).</summary>
    internal string? SafetensorsCode { get; init; }

    // Before the named fields: static initializers run in textual order.
    private static readonly IReadOnlyList<TorchDtype> Every = ReadTable();
    private static readonly IReadOnlyList<TorchDtype> Table = Every.Where(d => d.StorageClass.Length > 0).ToList();

    /// <summary><c>torch.float32</c>, saved as <c>torch.FloatStorage</c>.</summary>
    public static readonly TorchDtype Float32 = Named("float32");
    /// <summary><c>torch.float64</c>, saved as <c>torch.DoubleStorage</c>.</summary>
    public static readonly TorchDtype Float64 = Named("float64");
    /// <summary><c>torch.float16</c>, saved as <c>torch.HalfStorage</c>.</summary>
    public static readonly TorchDtype Float16 = Named("float16");
    /// <summary><c>torch.bfloat16</c>, saved as <c>torch.BFloat16Storage</c>.</summary>
    public static readonly TorchDtype BFloat16 = Named("bfloat16");
    /// <summary><c>torch.int64</c>, saved as <c>torch.LongStorage</c>.</summary>
    public static readonly TorchDtype Int64 = Named("int64");
    /// <summary><c>torch.int32</c>, saved as <c>torch.IntStorage</c>.</summary>
    public static readonly TorchDtype Int32 = Named("int32");
    /// <summary><c>torch.int16</c>, saved as <c>torch.ShortStorage</c>.</summary>
    public static readonly TorchDtype Int16 = Named("int16");
    /// <summary><c>torch.int8</c>, saved as <c>torch.CharStorage</c>.</summary>
    public static readonly TorchDtype Int8 = Named("int8");
    /// <summary><c>torch.uint8</c>, saved as <c>torch.ByteStorage</c>.</summary>
    public static readonly TorchDtype UInt8 = Named("uint8");
    /// <summary><c>torch.bool</c>, saved as <c>torch.BoolStorage</c>.</summary>
    public static readonly TorchDtype Bool = Named("bool");
    /// <summary><c>torch.complex64</c>, saved as <c>torch.ComplexFloatStorage</c>.</summary>
    public static readonly TorchDtype Complex64 = Named("complex64");
    /// <summary><c>torch.complex128</c>, saved as <c>torch.ComplexDoubleStorage</c>.</summary>
    public static readonly TorchDtype Complex128 = Named("complex128");

    /// <summary><c>torch.uint16</c> (torch 2.3 and later): no storage class, so torch.save files never hold it here; safetensors' <c>U16</c>.</summary>
    public static readonly TorchDtype UInt16 = AnyNamed("uint16");
    /// <summary><c>torch.uint32</c> (torch 2.3 and later): safetensors' <c>U32</c> only.</summary>
    public static readonly TorchDtype UInt32 = AnyNamed("uint32");
    /// <summary><c>torch.uint64</c> (torch 2.3 and later): safetensors' <c>U64</c> only.</summary>
    public static readonly TorchDtype UInt64 = AnyNamed("uint64");
    /// <summary><c>torch.float8_e4m3fn</c> (torch 2.1 and later): safetensors' <c>F8_E4M3</c> only.</summary>
    public static readonly TorchDtype Float8E4M3Fn = AnyNamed("float8_e4m3fn");
    /// <summary><c>torch.float8_e5m2</c> (torch 2.1 and later): safetensors' <c>F8_E5M2</c> only.</summary>
    public static readonly TorchDtype Float8E5M2 = AnyNamed("float8_e5m2");

    /// <summary>Every dtype the codec reads and writes: those with a storage class, in the table's order.</summary>
    public static IReadOnlyList<TorchDtype> All { get; } = Table;

    /// <summary>The storage classes, as the globals the pickle names (<c>torch.FloatStorage</c>).</summary>
    public static IEnumerable<string> StorageGlobals => All.Select(d => "torch." + d.StorageClass);

    /// <summary>The dtype of a storage class such as <c>FloatStorage</c>, or null.</summary>
    public static TorchDtype? FromStorageClass(string storageClass) => All.FirstOrDefault(d => d.StorageClass == storageClass);

    /// <summary>The dtype called <c>torch.float32</c> (or <c>float32</c>), or null.</summary>
    public static TorchDtype? FromName(string name) =>
        All.FirstOrDefault(d => d.Name == name || d.Name == "torch." + name);

    /// <summary>PyTorch's name, <c>torch.float32</c>.</summary>
    public override string ToString() => Name;

    /// <summary>Every dtype of the table, those without a storage class (empty <see cref="StorageClass"/>) included: what safetensors files hold.</summary>
    internal static IReadOnlyList<TorchDtype> WithSafetensors => Every;

    private static TorchDtype AnyNamed(string name) =>
        Every.FirstOrDefault(d => d.Name == "torch." + name) ?? throw new InvalidDataException($"the embedded dtype table has no {name}");

    private static TorchDtype Named(string name) =>
        Table.FirstOrDefault(d => d.Name == "torch." + name) ?? throw new InvalidDataException($"the embedded dtype table has no {name} with a storage class");

    /// <summary>The embedded dtypes.json, every entry; those torch.save has no typed-storage class for get an empty <see cref="StorageClass"/>.</summary>
    private static IReadOnlyList<TorchDtype> ReadTable()
    {
        using var stream = typeof(TorchDtype).Assembly.GetManifestResourceStream("TorchCheckpoints.dtypes.json")
                           ?? throw new InvalidDataException("TorchCheckpoints.dtypes.json is not embedded in " + typeof(TorchDtype).Assembly.GetName().Name);
        using var doc = JsonDocument.Parse(stream);
        var table = new List<TorchDtype>();
        foreach (var d in doc.RootElement.GetProperty("dtypes").EnumerateArray())
        {
            table.Add(new TorchDtype(d.GetProperty("storage_class").GetString() ?? "", d.GetProperty("torch").GetString()!, d.GetProperty("element_size").GetInt32())
            {
                ScalarTypeName = d.GetProperty("scalar_type").GetString()!,
                SafetensorsCode = d.GetProperty("safetensors").GetString(),
            });
        }
        return table;
    }
}
