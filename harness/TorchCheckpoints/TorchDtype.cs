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
/// <param name="StorageClass">The class name in the pickle's persistent id, without <c>torch.</c>.</param>
/// <param name="Name">PyTorch's name, <c>torch.float32</c>.</param>
/// <param name="ElementSize">Bytes per element.</param>
public sealed record TorchDtype(string StorageClass, string Name, int ElementSize)
{
    /// <summary>libtorch's c10::ScalarType member (TorchSharp's ScalarType mirrors it): <c>Float32</c>, <c>Byte</c>.</summary>
    internal string ScalarTypeName { get; init; } = "";

    // Before the named fields: static initializers run in textual order.
    private static readonly IReadOnlyList<TorchDtype> Table = ReadTable();

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

    private static TorchDtype Named(string name) =>
        Table.FirstOrDefault(d => d.Name == "torch." + name) ?? throw new InvalidDataException($"the embedded dtype table has no {name} with a storage class");

    /// <summary>The embedded dtypes.json: its entries that torch.save stores through a typed-storage class.</summary>
    private static IReadOnlyList<TorchDtype> ReadTable()
    {
        using var stream = typeof(TorchDtype).Assembly.GetManifestResourceStream("TorchCheckpoints.dtypes.json")
                           ?? throw new InvalidDataException("TorchCheckpoints.dtypes.json is not embedded in " + typeof(TorchDtype).Assembly.GetName().Name);
        using var doc = JsonDocument.Parse(stream);
        var table = new List<TorchDtype>();
        foreach (var d in doc.RootElement.GetProperty("dtypes").EnumerateArray())
        {
            if (d.GetProperty("storage_class").ValueKind == JsonValueKind.Null) continue;
            table.Add(new TorchDtype(d.GetProperty("storage_class").GetString()!, d.GetProperty("torch").GetString()!, d.GetProperty("element_size").GetInt32())
            {
                ScalarTypeName = d.GetProperty("scalar_type").GetString()!,
            });
        }
        return table;
    }
}
