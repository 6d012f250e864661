using System.Buffers.Binary;
using System.Text;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// The safetensors codec in-process with <see cref="RawTensors"/> (no libtorch): every dtype the format
/// has round trips bit for bit, the header is byte for byte what safetensors 0.8 writes, tied weights are
/// stored once with save_model's alias in <c>__metadata__</c> and re-tied at load, and every malformed
/// header is refused naming the file and the key, never a crash.
/// </summary>
[Trait("Category", "unit")]
public sealed class SafetensorsSpecs
{
    internal static RawTensor Tensor(TorchDtype dtype, long[] shape, int seed)
    {
        long numel = shape.Aggregate(1L, (a, b) => a * b);
        var bytes = new byte[numel * dtype.ElementSize];
        new Random(seed).NextBytes(bytes);
        if (dtype == TorchDtype.Bool)
            for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        return new RawTensor(new RawStorage(dtype, bytes), 0, shape, TensorLayout.ContiguousStride(shape));
    }

    /// <summary>The 16 dtypes safetensors has, by their codes.</summary>
    public static TheoryData<string, string> Dtypes() => new()
    {
        { "F64", "torch.float64" }, { "F32", "torch.float32" }, { "F16", "torch.float16" }, { "BF16", "torch.bfloat16" },
        { "I64", "torch.int64" }, { "I32", "torch.int32" }, { "I16", "torch.int16" }, { "I8", "torch.int8" },
        { "U8", "torch.uint8" }, { "BOOL", "torch.bool" }, { "U16", "torch.uint16" }, { "U32", "torch.uint32" },
        { "U64", "torch.uint64" }, { "F8_E4M3", "torch.float8_e4m3fn" }, { "F8_E5M2", "torch.float8_e5m2" }, { "C64", "torch.complex64" },
    };

    private static TorchDtype Dtype(string torchName) =>
        new[] { TorchDtype.UInt16, TorchDtype.UInt32, TorchDtype.UInt64, TorchDtype.Float8E4M3Fn, TorchDtype.Float8E5M2 }.Concat(TorchDtype.All).Single(d => d.Name == torchName);

    internal static (string Header, long Length) Header(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return (Encoding.UTF8.GetString(bytes, 8, (int)n), n);
    }

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void Every_dtype_round_trips_bit_for_bit_under_its_code(string code, string torchName)
    {
        var dtype = Dtype(torchName);
        var path = CodecSpecs.Scratch($"dtype-{code}.safetensors");
        var sd = new PyDict(ordered: true) { { "t", Tensor(dtype, [2, 3], 5) }, { "scalar", Tensor(dtype, [], 6) }, { "empty", Tensor(dtype, [0, 4], 7) } };
        Safetensors.Save(path, sd, RawTensors.Instance);
        Assert.Contains($"\"t\":{{\"dtype\":\"{code}\",\"shape\":[2,3]", Header(path).Header);
        var back = Safetensors.Load(path, RawTensors.Instance);
        Assert.True(back.Ordered);
        foreach (var key in new[] { "t", "scalar", "empty" })
        {
            var a = (RawTensor)sd[key]!;
            var b = (RawTensor)back[key]!;
            Assert.Equal(dtype, b.Dtype);
            Assert.Equal(a.Shape, b.Shape);
            Assert.Equal(a.ToContiguousBytes(), b.ToContiguousBytes());
        }
    }

    // What safetensors 0.8.0 (Debian forky) wrote for these 16 tensors and this metadata: st.save(d, metadata={'format': 'pt', 'zz': 'a'})
    // (its __metadata__ order is a hash map's and varies; this writer keeps the order given).
    private const string Safetensors08Header =
        "{\"__metadata__\":{\"format\":\"pt\",\"zz\":\"a\"},\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]},\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}," +
        "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]},\"z\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[24,40]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[40,48]}," +
        "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[48,52]},\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[52,56]},\"bf\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[56,58]}," +
        "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[58,64]},\"u\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[64,68]},\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[68,70]}," +
        "\"f84\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[70,71]},\"f8\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[71,72]},\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[72,73]}," +
        "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[73,74]},\"c\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[74,75]}}  ";

    [Fact]
    public void The_header_is_byte_for_byte_what_safetensors_writes_sorted_by_alignment_then_name_padded_to_8()
    {
        var path = CodecSpecs.Scratch("order.safetensors");
        var sd = new PyDict(ordered: true)
        {
            { "b", Tensor(TorchDtype.Float16, [3], 1) }, { "a", Tensor(TorchDtype.Float32, [2], 2) }, { "c", Tensor(TorchDtype.Bool, [1], 3) },
            { "z", Tensor(TorchDtype.Complex64, [2], 4) }, { "u", Tensor(TorchDtype.UInt16, [2], 5) }, { "u64", Tensor(TorchDtype.UInt64, [1], 6) },
            { "f8", Tensor(TorchDtype.Float8E5M2, [1], 7) }, { "f84", Tensor(TorchDtype.Float8E4M3Fn, [1], 8) }, { "i64", Tensor(TorchDtype.Int64, [1], 9) },
            { "d", Tensor(TorchDtype.Float64, [1], 10) }, { "u32", Tensor(TorchDtype.UInt32, [1], 11) }, { "bf", Tensor(TorchDtype.BFloat16, [1], 12) },
            { "i8", Tensor(TorchDtype.Int8, [1], 13) }, { "u8", Tensor(TorchDtype.UInt8, [1], 14) }, { "i16", Tensor(TorchDtype.Int16, [1], 15) },
            { "i32", Tensor(TorchDtype.Int32, [1], 16) },
        };
        Safetensors.Save(path, sd, RawTensors.Instance, new Dictionary<string, string> { ["format"] = "pt", ["zz"] = "a" });
        var (header, n) = Header(path);
        Assert.Equal(944, n);
        Assert.Equal(Safetensors08Header, header);
        Assert.Equal(8 + 944 + 75, new FileInfo(path).Length);
        // load_file (0.8) gives the tensors in the order of their bytes; then "zz", whose value names a tensor: an alias of it.
        Assert.Equal(["u64", "i64", "d", "z", "a", "u32", "i32", "bf", "b", "u", "i16", "f84", "f8", "i8", "u8", "c", "zz"], Safetensors.Load(path, RawTensors.Instance).Keys.Cast<string>());
    }

    [Fact]
    public void Tied_weights_are_stored_once_under_the_first_name_the_others_in_metadata_and_re_tied_at_load()
    {
        var path = CodecSpecs.Scratch("tied.safetensors");
        var emb = Tensor(TorchDtype.Float32, [4, 3], 1);
        var sd = new PyDict(ordered: true) { { "proj.weight", emb }, { "emb.weight", emb }, { "bias", Tensor(TorchDtype.Float32, [3], 2) }, { "head.weight", emb } };
        Safetensors.Save(path, sd, RawTensors.Instance);
        var (header, _) = Header(path);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\",\"head.weight\":\"emb.weight\",\"proj.weight\":\"emb.weight\"},", header);
        Assert.DoesNotContain("\"proj.weight\":{", header);
        Assert.Equal(8 + header.Length + 12 * 4 + 3 * 4, new FileInfo(path).Length);
        Assert.Equal([new("format", "pt"), new("head.weight", "emb.weight"), new("proj.weight", "emb.weight")], Safetensors.Metadata(path));

        var back = Safetensors.Load(path, RawTensors.Instance);
        Assert.Equal(["bias", "emb.weight", "head.weight", "proj.weight"], back.Keys.Cast<string>().Order(StringComparer.Ordinal));
        Assert.Same(back["emb.weight"], back["proj.weight"]);
        Assert.Same(back["emb.weight"], back["head.weight"]);
        Assert.Equal(emb.ToContiguousBytes(), ((RawTensor)back["proj.weight"]!).ToContiguousBytes());
    }

    [Fact]
    public void A_metadata_value_naming_no_tensor_and_the_format_key_are_not_aliases()
    {
        var path = CodecSpecs.Scratch("meta.safetensors");
        Safetensors.Save(path, new PyDict(ordered: true) { { "w", Tensor(TorchDtype.Float32, [2], 1) } }, RawTensors.Instance,
            new Dictionary<string, string> { ["note"] = "hello", ["alias"] = "w", ["w"] = "w" });
        var back = Safetensors.Load(path, RawTensors.Instance);
        Assert.Equal(["w", "alias"], back.Keys.Cast<string>());
    }

    [Fact]
    public void A_view_is_written_as_a_contiguous_copy_and_complex128_is_refused_naming_the_key()
    {
        var path = CodecSpecs.Scratch("view.safetensors");
        var whole = Tensor(TorchDtype.Int32, [3, 4], 3);
        var transposed = new RawTensor(whole.Storage, 1, [3, 3], [1, 4]);
        Safetensors.Save(path, new PyDict(ordered: true) { { "whole", whole }, { "t", transposed } }, RawTensors.Instance);
        var back = Safetensors.Load(path, RawTensors.Instance);
        Assert.Equal(transposed.ToContiguousBytes(), ((RawTensor)back["t"]!).ToContiguousBytes());
        Assert.Equal(whole.ToContiguousBytes(), ((RawTensor)back["whole"]!).ToContiguousBytes());

        var e = Assert.Throws<CheckpointFormatException>(() =>
            Safetensors.Save(CodecSpecs.Scratch("c128.safetensors"), new PyDict { { "c", Tensor(TorchDtype.Complex128, [1], 1) } }, RawTensors.Instance));
        Assert.Contains("'c'", e.Message);
        Assert.Contains("torch.complex128", e.Message);
        Assert.False(File.Exists(CodecSpecs.Scratch("c128.safetensors")));
    }

    // ------------------------------------------------------------------ refusals

    private static byte[] File8(string header, byte[] data, long? declared = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(declared ?? h.Length));
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    private const string A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    public static TheoryData<string, string, string?, string> Malformed() => new()
    {
        // name, header, key the message names (null: none), words it holds
        { "beyond-file", "{" + A + "}", null, "past the end of the file" },
        { "over-100mb", "{" + A + "}", null, "over safetensors' limit of 100,000,000" },
        { "invalid-json", "{\"a\":{\"dtype\":\"F32\",", null, "not valid JSON" },
        { "not-object", "[1,2]", null, "not an object" },
        { "unknown-dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", "a", "dtype 'F128'" },
        { "out-of-bounds", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "a", "past the end of the data" },
        { "overlap", "{" + A + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "b", "overlaps tensor 'a'" },
        { "gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "a", "belong to no tensor" },
        { "not-covering", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "a", "but 8 follow the header" },
        { "byte-count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "a", "needs 12" },
        { "duplicate-key", "{" + A + "," + A + "}", "a", "the key 'a' twice" },
        { "negative-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "a", "each size is a whole number" },
        { "huge-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", "a", "over" },
        { "bad-offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "a", "not [begin, end]" },
        { "backwards", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "a", "end before they begin" },
        { "no-shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "a", "has no 'shape'" },
        { "metadata-not-string", "{\"__metadata__\":{\"format\":1}," + A + "}", "format", "not a string" },
        { "metadata-twice", "{\"__metadata__\":{},\"__metadata__\":{}," + A + "}", "__metadata__", "twice" },
        { "tensor-not-object", "{\"a\":7}", "a", "not an object" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_malformed_file_is_refused_naming_the_file_and_key(string name, string header, string? key, string words)
    {
        var path = CodecSpecs.Scratch($"bad-{name}.safetensors");
        long? declared = name switch { "beyond-file" => 10_000, "over-100mb" => 100_000_001, _ => null };
        File.WriteAllBytes(path, File8(header, new byte[8], declared));
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => Safetensors.Load(path, RawTensors.Instance));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(words, e.Message);
        Assert.Equal(key, e.Entry);
        if (key is not null)
            Assert.Contains($"'{key}'", e.Message);
    }

    [Fact]
    public void A_file_too_short_for_its_header_length_is_refused()
    {
        var path = CodecSpecs.Scratch("bad-short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Load(path, RawTensors.Instance));
        Assert.StartsWith(path + ": has 3 bytes", e.Message);
    }

    [Fact]
    public void Mutated_files_never_crash_the_reader_only_load_or_refuse()
    {
        var path = CodecSpecs.Scratch("fuzz-seed.safetensors");
        var emb = Tensor(TorchDtype.Float32, [4, 3], 1);
        Safetensors.Save(path, new PyDict(ordered: true)
        {
            { "emb.weight", emb }, { "proj.weight", emb }, { "b", Tensor(TorchDtype.BFloat16, [5], 2) }, { "n", Tensor(TorchDtype.Int64, [2, 2], 3) },
        }, RawTensors.Instance);
        var seed = File.ReadAllBytes(path);
        var random = new Random(1);
        var target = CodecSpecs.Scratch("fuzz.safetensors");
        int loaded = 0, refused = 0;
        for (int i = 0; i < 3000; i++)
        {
            var bytes = (byte[])seed.Clone();
            int edits = random.Next(1, 4);
            for (int k = 0; k < edits && bytes.Length > 0; k++)
            {
                switch (random.Next(4))
                {
                    case 0: bytes[random.Next(bytes.Length)] = (byte)random.Next(256); break;
                    case 1: bytes[random.Next(Math.Min(bytes.Length, 200))] = (byte)"{}[],:\"0123456789 -"[random.Next(19)]; break;
                    case 2: Array.Resize(ref bytes, random.Next(bytes.Length)); break;
                    default: bytes = bytes.Concat(new byte[random.Next(1, 16)]).ToArray(); break;
                }
            }
            File.WriteAllBytes(target, bytes);
            try
            {
                Safetensors.Load(target, RawTensors.Instance);
                loaded++;
            }
            catch (CheckpointFormatException e)
            {
                Assert.StartsWith(target + ": ", e.Message);
                refused++;
            }
        }
        Assert.True(refused > 1000, $"only {refused} of 3000 mutations refused ({loaded} loaded)");
    }
}
