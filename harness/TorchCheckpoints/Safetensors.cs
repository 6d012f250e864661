using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>
/// Reads and writes the safetensors format (Hugging Face's <c>model.safetensors</c>): an 8-byte
/// little-endian header length, a JSON header <c>{name: {dtype, shape, data_offsets: [begin, end]},
/// "__metadata__": {str: str}}</c> padded with spaces to a multiple of 8, then the tensors' bytes,
/// contiguous and little-endian. Writes as <c>safetensors.torch.save_model</c> does: tensors sharing
/// memory (tied weights) are stored once, each dropped name recorded in <c>__metadata__</c> as
/// <c>removed → kept</c>, with <c>"format": "pt"</c>; reads such aliases back, so a tied-weights file
/// loads as the full state dict.
/// </summary>
/// <example>
/// <code>
/// var sd = Safetensors.Load("model.safetensors");            // safetensors.torch.load_file + the aliases
/// Safetensors.Save("copy.safetensors", sd);                    // safetensors.torch.save_model's file
/// </code>
/// </example>
public static class Safetensors
{
    /// <summary>The largest header read, as safetensors' own reader: 100,000,000 bytes.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The dtype codes in safetensors' own order (its Rust <c>Dtype</c> enum): the writer
    /// stores the tensors by this rank descending, then by name, so larger alignments come first.</summary>
    private static readonly string[] CodeRank =
        ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"];

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The key of the metadata in the header.</summary>
    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Reads a safetensors file into TorchSharp tensors, in the order of their bytes in the file (what
    /// <c>safetensors.torch.load_file</c> 0.8 returns; 0.4 sorted the names), followed by the
    /// aliases <c>__metadata__</c> records. A malformed file raises <see cref="CheckpointFormatException"/>
    /// naming the file and the key; a dtype this TorchSharp has no type for (uint16, uint32, uint64
    /// and the float8s before TorchSharp has them) is refused naming the key: <see cref="RawTensors"/> reads them.
    /// </summary>
    public static StateDict Load(string path, CheckpointLimits? limits = null) =>
        StateDict.From(Load(path, TorchSharpTensors.Instance, limits), path);

    /// <summary>
    /// Reads a safetensors file with tensors made by <paramref name="backend"/>: an ordered dict
    /// (<see cref="PyDict.Ordered"/>) of name → tensor, in file order, then each alias
    /// (<c>__metadata__</c>'s <c>removed → kept</c>, for a key that is not a tensor and whose value is one)
    /// as the same tensor object as the one it names. The header is checked whole before any tensor
    /// is made: its length against the file and <see cref="MaxHeaderBytes"/>, valid JSON, no key twice,
    /// known dtypes, each tensor's bytes equal to its shape × element size, and the offsets covering
    /// the data exactly, without gaps or overlaps.
    /// </summary>
    public static PyDict Load(string path, TensorBackend backend, CheckpointLimits? limits = null)
    {
        limits ??= CheckpointLimits.Default;
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, null, "this reader needs a little-endian machine");
        using var stream = OpenRead(path);
        var file = stream.SafeFileHandle;
        var header = ReadHeader(file, path, RandomAccess.GetLength(file), limits);
        var result = new PyDict(ordered: true) { SourcePath = path };
        var made = new List<object>();
        try
        {
            foreach (var t in header.Tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal))
            {
                var tensor = ReadTensor(file, path, header.DataStart, t, backend);
                made.Add(tensor);
                result.Add(t.Name, tensor);
            }
        }
        catch
        {
            foreach (var tensor in made)
                backend.ReleaseTensor(tensor);
            throw;
        }
        foreach (var (removed, kept) in header.Metadata)
        {
            if (removed != "format" && !result.ContainsKey(removed) && header.Tensors.Any(t => t.Name == kept))
                result.Add(removed, result[kept]);
        }
        return result;
    }

    /// <summary>The file's <c>__metadata__</c> (empty when it has none), in the header's order; the
    /// header is checked as <see cref="Load(string, TensorBackend, CheckpointLimits?)"/> checks it.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Metadata(string path, CheckpointLimits? limits = null)
    {
        using var stream = OpenRead(path);
        return ReadHeader(stream.SafeFileHandle, path, stream.Length, limits ?? CheckpointLimits.Default).Metadata;
    }

    /// <summary>
    /// Writes TorchSharp tensors as <c>safetensors.torch.save_model</c> does (and so transformers'
    /// <c>save_pretrained</c>): tensors over the same memory with the same shape and strides (tied
    /// weights) are stored once, under the first of their names in ordinal order, and each other name
    /// goes into <c>__metadata__</c> as <c>removed → kept</c>; <c>__metadata__</c> starts with
    /// <c>"format": "pt"</c> (unless <paramref name="metadata"/> gives a format), then
    /// <paramref name="metadata"/>, then the aliases. Other tensors are written as contiguous copies.
    /// The tensors are stored in safetensors' own order (dtype alignment descending, then name), so the
    /// file is byte for byte what safetensors 0.8 writes for them. The write is atomic
    /// (<see cref="AtomicFile"/>): a failure leaves no file and raises <see cref="CheckpointWriteException"/>;
    /// a tensor safetensors has no dtype for (complex128) raises <see cref="CheckpointFormatException"/> naming it.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, ToPyDict(tensors), TorchSharpTensors.Instance, metadata);

    /// <summary><see cref="Save(string, IEnumerable{KeyValuePair{string, Tensor}}, IReadOnlyDictionary{string, string}?)"/>
    /// for a dict of name → tensor whose tensors are <paramref name="backend"/>'s (<see cref="RawTensors"/>: <see cref="RawTensor"/>).</summary>
    public static void Save(string path, PyDict tensors, TensorBackend backend, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var plan = Plan(path, tensors, backend);
        Write(path, plan.Items, Metadata(metadata, plan.Aliases), backend);
    }

    /// <summary><c>safetensors.torch.save_model(module, path)</c>: the module's state dict, tied weights once.</summary>
    public static void SaveModel(string path, nn.Module module, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, StateDict.Of(module), metadata);

    // ------------------------------------------------------------------ writing

    /// <summary>A tensor to store: its name, the backend's tensor, and what the backend says of it.</summary>
    internal sealed record Item(string Name, object Tensor, TensorInfo Info, string Code);

    /// <summary>The tensors to store (the first name of each set of aliases, in the dict's order) and the dropped names (removed, kept).</summary>
    internal sealed record Stored(List<Item> Items, List<KeyValuePair<string, string>> Aliases);

    internal static PyDict ToPyDict(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var dict = new PyDict(ordered: true);
        foreach (var (name, tensor) in tensors)
        {
            if (dict.ContainsKey(name))
                throw new CheckpointFormatException(null, name, $"the name '{name}' is given twice");
            dict.Add(name, tensor);
        }
        return dict;
    }

    /// <summary>Checks every entry and finds the aliases as safetensors' <c>_remove_duplicate_names</c>
    /// does: each set of names over the same memory keeps its first name in ordinal order, the others
    /// (sorted) are dropped; the sets in the order they first appear.</summary>
    internal static Stored Plan(string path, PyDict tensors, TensorBackend backend)
    {
        var items = new List<Item>();
        foreach (var (key, value) in tensors)
        {
            if (key is not string name)
                throw new CheckpointFormatException(path, null, $"the key {PyDict.Describe(key)} is not a string; safetensors names tensors with strings");
            if (name == MetadataKey)
                throw new CheckpointFormatException(path, name, $"a tensor cannot be named '{MetadataKey}', the header's metadata key");
            if (value is null || !backend.IsTensor(value))
                throw new CheckpointFormatException(path, name, $"'{name}' holds {PyDict.Kind(value)}, not a {backend.GetType().Name} tensor");
            var info = backend.Describe(value);
            var code = info.Dtype?.SafetensorsCode
                ?? throw new CheckpointFormatException(path, name,
                    $"tensor '{name}' is {info.DtypeName}, which safetensors has no dtype for (it has {string.Join(", ", TorchDtype.WithSafetensors.Where(d => d.SafetensorsCode is not null).Select(d => d.Name))})");
            items.Add(new Item(name, value, info, code));
        }
        var groups = new Dictionary<object, List<string>>();
        var order = new List<List<string>>();
        foreach (var item in items.Where(i => i.Info.Identity is not null))
        {
            if (!groups.TryGetValue(item.Info.Identity!, out var names))
            {
                groups.Add(item.Info.Identity!, names = []);
                order.Add(names);
            }
            names.Add(item.Name);
        }
        var aliases = new List<KeyValuePair<string, string>>();
        foreach (var names in order.Where(n => n.Count > 1))
        {
            var sorted = names.Order(StringComparer.Ordinal).ToList();
            aliases.AddRange(sorted.Skip(1).Select(removed => new KeyValuePair<string, string>(removed, sorted[0])));
        }
        var dropped = aliases.Select(a => a.Key).ToHashSet(StringComparer.Ordinal);
        return new Stored(items.Where(i => !dropped.Contains(i.Name)).ToList(), aliases);
    }

    /// <summary>save_model's metadata: "format": "pt" unless the caller gives a format, the caller's, then each alias not already a key.</summary>
    internal static List<KeyValuePair<string, string>> Metadata(IReadOnlyDictionary<string, string>? given, IEnumerable<KeyValuePair<string, string>> aliases)
    {
        var result = new List<KeyValuePair<string, string>>();
        if (given is null || !given.ContainsKey("format"))
            result.Add(new("format", "pt"));
        if (given is not null)
            result.AddRange(given);
        foreach (var alias in aliases)
        {
            if (!result.Any(r => r.Key == alias.Key))
                result.Add(alias);
        }
        return result;
    }

    /// <summary>Writes one file of <paramref name="items"/> (no two share memory) with <paramref name="metadata"/>, atomically.</summary>
    internal static void Write(string path, IReadOnlyList<Item> items, IReadOnlyList<KeyValuePair<string, string>> metadata, TensorBackend backend)
    {
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, null, "this writer needs a little-endian machine");
        var ordered = items.OrderByDescending(i => Array.IndexOf(CodeRank, i.Code)).ThenBy(i => i.Name, StringComparer.Ordinal).ToList();
        var json = new StringBuilder("{");
        if (metadata.Count > 0)
        {
            json.Append('"').Append(MetadataKey).Append("\":{");
            json.AppendJoin(',', metadata.Select(m => $"{JsonText.Quote(m.Key, asciiOnly: false)}:{JsonText.Quote(m.Value, asciiOnly: false)}"));
            json.Append('}');
        }
        var places = new List<(Item Item, long Begin, long Size)>();
        long offset = 0;
        foreach (var item in ordered)
        {
            long size = item.Info.ByteCount;
            if (json.Length > 1)
                json.Append(',');
            json.Append(JsonText.Quote(item.Name, asciiOnly: false)).Append(":{\"dtype\":\"").Append(item.Code).Append("\",\"shape\":[")
                .AppendJoin(',', item.Info.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)))
                .Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append((offset + size).ToString(CultureInfo.InvariantCulture)).Append("]}");
            places.Add((item, offset, size));
            offset += size;
        }
        json.Append('}');
        var headerText = Encoding.UTF8.GetBytes(json.ToString());
        var header = new byte[8 + (headerText.Length + 7) / 8 * 8];
        header.AsSpan(8).Fill((byte)' ');
        headerText.CopyTo(header, 8);
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)(header.Length - 8));
        long total = header.Length + offset;
        AtomicFile.Write(path, file =>
        {
            RandomAccess.Write(file, header, 0);
            Segments.ForEach(places, p =>
            {
                var record = new RecordWriter(file, p.Item.Name, header.Length + p.Begin, p.Size);
                backend.WriteContiguous(p.Item.Tensor, record);
                record.Finish();
            });
            return total;
        });
    }

    // ------------------------------------------------------------------ reading

    /// <summary>One tensor of the header.</summary>
    private sealed record Entry(string Name, TorchDtype Dtype, long[] Shape, long ElementCount, long Begin, long End);

    /// <summary>The checked header: its tensors (header order), its metadata, and where the data start.</summary>
    private sealed record Header(List<Entry> Tensors, List<KeyValuePair<string, string>> Metadata, long DataStart);

    private static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot be opened: {AtomicFile.Describe(e)}", e);
        }
    }

    private static Header ReadHeader(SafeFileHandle file, string path, long fileLength, CheckpointLimits limits)
    {
        if (fileLength < 8)
            throw new CheckpointFormatException(path, null, $"has {fileLength:N0} bytes; a safetensors file starts with an 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        ReadAt(file, path, prefix, 0);
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (declared > MaxHeaderBytes)
            throw new CheckpointFormatException(path, null, $"declares a header of {declared:N0} bytes, over safetensors' limit of {MaxHeaderBytes:N0}");
        long length = (long)declared;
        if (length > fileLength - 8)
            throw new CheckpointFormatException(path, null, $"declares a header of {length:N0} bytes, past the end of the file ({fileLength:N0} bytes)");
        if (length < 2)
            throw new CheckpointFormatException(path, null, $"declares a header of {length:N0} bytes; the header is a JSON object, at least '{{}}'");
        var bytes = new byte[length];
        ReadAt(file, path, bytes, 8);
        long bufferLength = fileLength - 8 - length;

        try
        {
            _ = StrictUtf8.GetCharCount(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new CheckpointFormatException(path, null, $"its header is not valid UTF-8 (byte {e.Index:N0} of the header)", e);
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"its header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(path, null, $"its header is a JSON {doc.RootElement.ValueKind}, not an object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var tensors = new List<Entry>();
            var metadata = new List<KeyValuePair<string, string>>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new CheckpointFormatException(path, property.Name, $"its header has the key '{property.Name}' twice");
                if (property.Name == MetadataKey)
                    metadata = ReadMetadata(path, property.Value);
                else
                    tensors.Add(ReadEntry(path, property.Name, property.Value, limits));
            }
            CheckCoverage(path, tensors, bufferLength);
            long total = tensors.Sum(t => t.End - t.Begin);
            if (total > limits.MaxTensorBytes)
                throw new CheckpointLimitException(path, null, nameof(CheckpointLimits.MaxTensorBytes), limits.MaxTensorBytes, total, "the tensors");
            return new Header(tensors, metadata, 8 + length);
        }
    }

    private static List<KeyValuePair<string, string>> ReadMetadata(string path, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, MetadataKey, $"its header's '{MetadataKey}' is a JSON {value.ValueKind}, not an object of strings");
        var result = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in value.EnumerateObject())
        {
            if (!seen.Add(m.Name))
                throw new CheckpointFormatException(path, m.Name, $"its header's '{MetadataKey}' has the key '{m.Name}' twice");
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException(path, m.Name, $"its header's '{MetadataKey}' gives '{m.Name}' a JSON {m.Value.ValueKind}, not a string");
            result.Add(new(m.Name, m.Value.GetString()!));
        }
        return result;
    }

    private static Entry ReadEntry(string path, string name, JsonElement value, CheckpointLimits limits)
    {
        CheckpointFormatException Bad(string detail) => new(path, name, $"tensor '{name}' {detail}");
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad($"is a JSON {value.ValueKind} in the header, not an object with dtype, shape and data_offsets");
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var f in value.EnumerateObject())
        {
            if (!fields.TryAdd(f.Name, f.Value))
                throw Bad($"has the field '{f.Name}' twice");
        }
        JsonElement Field(string field) => fields.TryGetValue(field, out var v) ? v : throw Bad($"has no '{field}'");

        var dtypeValue = Field("dtype");
        var code = dtypeValue.ValueKind == JsonValueKind.String ? dtypeValue.GetString()! : dtypeValue.GetRawText();
        var dtype = TorchDtype.WithSafetensors.FirstOrDefault(d => d.SafetensorsCode == code)
            ?? throw Bad($"has the dtype '{Printable(code)}', which this reader does not know (it reads {string.Join(", ", TorchDtype.WithSafetensors.Select(d => d.SafetensorsCode).OfType<string>())})");

        var shapeValue = Field("shape");
        if (shapeValue.ValueKind != JsonValueKind.Array)
            throw Bad($"has the shape {Printable(shapeValue.GetRawText())}, not an array of sizes");
        if (shapeValue.GetArrayLength() > limits.MaxRank)
            throw new CheckpointLimitException(path, name, nameof(CheckpointLimits.MaxRank), limits.MaxRank, shapeValue.GetArrayLength(), $"tensor '{name}'");
        var shape = shapeValue.EnumerateArray().Select(d => Natural(d) ?? throw Bad($"has the shape {Printable(shapeValue.GetRawText())}: each size is a whole number of 0 or more")).ToArray();
        long numel = 1;
        foreach (var d in shape)
        {
            if (d != 0 && numel > long.MaxValue / dtype.ElementSize / d)
                throw Bad($"has the shape [{string.Join(", ", shape)}], over {long.MaxValue:N0} bytes");
            numel *= d;
        }

        var offsets = Field("data_offsets");
        if (offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2 || Natural(offsets[0]) is not { } begin || Natural(offsets[1]) is not { } end)
            throw Bad($"has the data_offsets {Printable(offsets.GetRawText())}, not [begin, end] in bytes");
        if (end < begin)
            throw Bad($"has the data_offsets [{begin}, {end}], which end before they begin");
        long expected = numel * dtype.ElementSize;
        if (end - begin != expected)
            throw Bad($"has {end - begin:N0} bytes (data_offsets [{begin}, {end}]), but its shape [{string.Join(", ", shape)}] of {code} ({dtype.ElementSize} bytes each) needs {expected:N0}");
        return new Entry(name, dtype, shape, numel, begin, end);
    }

    /// <summary>The data are the tensors' bytes exactly: sorted by offset, each begins where the one before ends, the last ends at the end of the file.</summary>
    private static void CheckCoverage(string path, List<Entry> tensors, long bufferLength)
    {
        foreach (var t in tensors.Where(t => t.End > bufferLength))
            throw new CheckpointFormatException(path, t.Name, $"tensor '{t.Name}' has the data_offsets [{t.Begin}, {t.End}], past the end of the data ({bufferLength:N0} bytes after the header)");
        long covered = 0;
        Entry? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal))
        {
            if (t.Begin < covered)
                throw new CheckpointFormatException(path, t.Name,
                    $"tensor '{t.Name}' (data_offsets [{t.Begin}, {t.End}]) overlaps tensor '{previous!.Name}' (data_offsets [{previous.Begin}, {previous.End}])");
            if (t.Begin > covered)
                throw new CheckpointFormatException(path, t.Name,
                    $"bytes [{covered}, {t.Begin}) of the data belong to no tensor (tensor '{t.Name}' begins at {t.Begin}); the offsets must cover the data without gaps");
            covered = t.End;
            previous = t;
        }
        if (covered != bufferLength)
            throw new CheckpointFormatException(path, previous?.Name,
                $"the tensors cover {covered:N0} bytes of data{(previous is null ? "" : $" (the last, tensor '{previous.Name}', ends at {previous.End:N0})")}, but {bufferLength:N0} follow the header; the offsets must cover the data exactly");
    }

    private static long? Natural(JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) && v >= 0 ? v : null;

    private static string Printable(string text) =>
        (text.Length > 60 ? text[..60] + "…" : text).Aggregate(new StringBuilder(), (sb, c) => c is >= ' ' and < '\x7f' || c > '\xa0' ? sb.Append(c) : sb.Append($"\\x{(int)c:x2}")).ToString();

    private static void ReadAt(SafeFileHandle file, string path, Span<byte> destination, long offset)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n == 0)
                throw new CheckpointFormatException(path, null, $"ends at byte {offset:N0}, before the bytes its header declares");
            destination = destination[n..];
            offset += n;
        }
    }

    private static unsafe object ReadTensor(SafeFileHandle file, string path, long dataStart, Entry t, TensorBackend backend)
    {
        if (!backend.Holds(t.Dtype))
            throw new CheckpointFormatException(path, t.Name,
                $"tensor '{t.Name}' is {t.Dtype.Name}, which {backend.GetType().Name} has no type for here; RawTensors.Instance reads it");
        var request = new StorageRequest(t.Name, t.Name, t.Dtype, t.ElementCount, "cpu");
        var layout = new TensorLayout(t.Dtype, 0, t.Shape, TensorLayout.ContiguousStride(t.Shape), false);
        long size = t.End - t.Begin;
        if (backend.AllocateStorage(request) is { } allocated)
        {
            try
            {
                for (long done = 0; done < size; done += Segments.Chunk)
                    ReadAt(file, path, new Span<byte>((byte*)allocated.Address + done, (int)Math.Min(Segments.Chunk, size - done)), dataStart + t.Begin + done);
                return backend.CreateTensor(allocated.Storage, layout);
            }
            finally
            {
                backend.ReleaseStorage(allocated.Storage);
            }
        }
        if (size > Array.MaxLength)
            throw new CheckpointLimitException(path, t.Name, "Array.MaxLength", Array.MaxLength, size, $"tensor '{t.Name}' ({backend.GetType().Name} reads it into one array)");
        var bytes = new byte[size];
        ReadAt(file, path, bytes, dataStart + t.Begin);
        return backend.FromContiguousBytes(t.Dtype, t.Shape, bytes, false);
    }
}
