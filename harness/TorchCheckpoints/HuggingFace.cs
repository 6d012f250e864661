using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>
/// The weights of a Hugging Face transformers <c>save_pretrained</c> folder: <c>model.safetensors</c>,
/// <c>pytorch_model.bin</c>, or their sharded forms (<c>model-00001-of-00002.safetensors</c> …, with
/// <c>model.safetensors.index.json</c>; <c>pytorch_model-00001-of-00002.bin</c> …, with
/// <c>pytorch_model.bin.index.json</c>), whose index is
/// <c>{"metadata": {"total_size": N}, "weight_map": {key: shard}}</c>.
/// </summary>
/// <example>
/// <code>
/// var sd = HuggingFace.LoadFolder("gpt2");                                      // every shard, tied weights re-tied
/// HuggingFace.SaveFolder("out", sd, maxShardBytes: HuggingFace.HalfTheModel(sd)); // two shards and the index
/// </code>
/// </example>
public static class HuggingFace
{
    /// <summary>The files a folder is read from, in the order they are looked for (transformers prefers safetensors).</summary>
    private const string SafeSingle = "model.safetensors", SafeIndex = "model.safetensors.index.json",
        BinSingle = "pytorch_model.bin", BinIndex = "pytorch_model.bin.index.json";

    /// <summary>The safetensors formats transformers loads (<c>__metadata__</c>'s <c>format</c>); another is refused.</summary>
    private static readonly string[] SafeFormats = ["pt", "tf", "flax", "mlx"];

    /// <summary>
    /// Reads the weights of a <c>save_pretrained</c> folder into TorchSharp tensors: the first of
    /// <c>model.safetensors</c>, <c>model.safetensors.index.json</c>, <c>pytorch_model.bin</c>,
    /// <c>pytorch_model.bin.index.json</c> it holds; a sharded folder shard by shard in the index's
    /// order, each safetensors shard with its aliases resolved (<see cref="Safetensors.Load(string, CheckpointLimits?)"/>).
    /// Refused, with <see cref="CheckpointFormatException"/> naming the folder or file: a folder with none
    /// of these files, an index that is not <c>{"weight_map": {key: file}}</c>, a shard outside the folder,
    /// a missing shard, a key the index maps to a shard that does not hold it, a safetensors format
    /// transformers does not load.
    /// </summary>
    public static StateDict LoadFolder(string folder, CheckpointLimits? limits = null) =>
        StateDict.From(LoadFolder(folder, TorchSharpTensors.Instance, limits), folder);

    /// <summary><see cref="LoadFolder(string, CheckpointLimits?)"/> with tensors made by <paramref name="backend"/>: an ordered dict of name → tensor.</summary>
    public static PyDict LoadFolder(string folder, TensorBackend backend, CheckpointLimits? limits = null)
    {
        if (!Directory.Exists(folder))
            throw new CheckpointFormatException(folder, null, "is not a folder");
        if (File.Exists(Path.Combine(folder, SafeSingle)))
            return LoadSafetensors(Path.Combine(folder, SafeSingle), backend, limits);
        if (File.Exists(Path.Combine(folder, SafeIndex)))
            return LoadSharded(folder, SafeIndex, backend, limits);
        if (File.Exists(Path.Combine(folder, BinSingle)))
            return LoadBin(Path.Combine(folder, BinSingle), backend, limits);
        if (File.Exists(Path.Combine(folder, BinIndex)))
            return LoadSharded(folder, BinIndex, backend, limits);
        var present = Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(10).ToList();
        throw new CheckpointFormatException(folder, null,
            $"holds none of {SafeSingle}, {SafeIndex}, {BinSingle}, {BinIndex}, the weights transformers' save_pretrained writes " +
            $"(it holds {(present.Count == 0 ? "nothing" : string.Join(", ", present))})");
    }

    private static PyDict LoadSafetensors(string path, TensorBackend backend, CheckpointLimits? limits)
    {
        var format = Safetensors.Metadata(path, limits).FirstOrDefault(m => m.Key == "format").Value;
        if (format is not null && !SafeFormats.Contains(format))
            throw new CheckpointFormatException(path, "format",
                $"its __metadata__ gives the format '{format}', which transformers does not load (it loads {string.Join(", ", SafeFormats)})");
        return Safetensors.Load(path, backend, limits);
    }

    private static PyDict LoadBin(string path, TensorBackend backend, CheckpointLimits? limits)
    {
        var dict = TorchCheckpoint.AsDict(TorchCheckpoint.LoadObject(path, backend, limits), path);
        foreach (var (key, value) in dict)
        {
            if (key is not string || value is null || !backend.IsTensor(value))
                throw new CheckpointFormatException(path, key as string,
                    $"is not a state dict: {PyDict.Describe(key)} holds {PyDict.Kind(value)}, not a tensor");
        }
        return dict;
    }

    private static PyDict LoadSharded(string folder, string indexName, TensorBackend backend, CheckpointLimits? limits)
    {
        var indexPath = Path.Combine(folder, indexName);
        var weightMap = ReadIndex(indexPath);
        var root = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        foreach (var (key, shard) in weightMap)
        {
            var full = Path.GetFullPath(Path.Combine(folder, shard));
            if (shard.Length == 0 || Path.IsPathRooted(shard) || !full.StartsWith(root, StringComparison.Ordinal))
                throw new CheckpointFormatException(indexPath, key, $"maps '{key}' to the shard '{shard}', which is outside the folder {folder}");
        }
        var result = new PyDict(ordered: true) { SourcePath = folder };
        foreach (var shard in weightMap.Select(w => w.Value).Distinct(StringComparer.Ordinal))
        {
            var path = Path.Combine(folder, shard);
            var keys = weightMap.Where(w => w.Value == shard).Select(w => w.Key).ToList();
            if (!File.Exists(path))
                throw new CheckpointFormatException(indexPath, keys[0],
                    $"maps {Names(keys)} to the shard '{shard}', which is not in the folder {folder}");
            var part = indexName == BinIndex ? LoadBin(path, backend, limits) : LoadSafetensors(path, backend, limits);
            var absent = keys.Where(k => !part.ContainsKey(k)).ToList();
            if (absent.Count > 0)
                throw new CheckpointFormatException(indexPath, absent[0], $"maps {Names(absent)} to the shard '{shard}', which does not hold {(absent.Count == 1 ? "it" : "them")}");
            foreach (var (key, tensor) in part)
                result[key] = tensor;
        }
        return result;
    }

    private static string Names(IReadOnlyList<string> keys) =>
        string.Join(", ", keys.Take(5).Select(k => $"'{k}'")) + (keys.Count > 5 ? $" and {keys.Count - 5} more" : "");

    /// <summary>The index's weight_map, in its order; anything else than <c>{"weight_map": {str: str}}</c> is refused.</summary>
    private static List<KeyValuePair<string, string>> ReadIndex(string indexPath)
    {
        JsonDocument doc;
        try
        {
            var bytes = File.ReadAllBytes(indexPath);
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(indexPath, null, $"is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(indexPath, null, $"cannot be read: {AtomicFile.Describe(e)}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(indexPath, "weight_map", "has no \"weight_map\" object of key → shard file");
            var result = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                    throw new CheckpointFormatException(indexPath, p.Name, $"its weight_map has the key '{p.Name}' twice");
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException(indexPath, p.Name, $"its weight_map maps '{p.Name}' to a JSON {p.Value.ValueKind}, not a shard file name");
                result.Add(new(p.Name, p.Value.GetString()!));
            }
            return result;
        }
    }

    /// <summary>
    /// The shard size the conformance suite writes sharded folders with (python/torchconformance/worker/layouts.py):
    /// half the model's bytes, each memory counted once (tied weights once), at least 1, so that even a
    /// small model comes in two or more shards.
    /// </summary>
    public static long HalfTheModel(IEnumerable<KeyValuePair<string, Tensor>> stateDict) =>
        HalfTheModel(Safetensors.ToPyDict(stateDict), TorchSharpTensors.Instance);

    /// <summary><see cref="HalfTheModel(IEnumerable{KeyValuePair{string, Tensor}})"/> for <paramref name="backend"/>'s tensors.</summary>
    public static long HalfTheModel(PyDict stateDict, TensorBackend backend) =>
        Math.Max(1, Units(null, stateDict, backend).Where(u => u.First).Sum(u => u.Bytes) / 2);

    /// <summary>
    /// Writes a state dict as transformers' <c>save_pretrained</c> does: with no <paramref name="maxShardBytes"/>,
    /// one <c>model.safetensors</c> (as <see cref="Safetensors.Save(string, IEnumerable{KeyValuePair{string, Tensor}}, IReadOnlyDictionary{string, string}?)"/>:
    /// <c>"format": "pt"</c>, tied weights once) or <c>pytorch_model.bin</c> (torch.save of the state dict).
    /// With it, shards (<c>model-00001-of-0000N.safetensors</c> or <c>pytorch_model-00001-of-0000N.bin</c>) and the
    /// index JSON (<c>total_size</c>, <c>weight_map</c> with sorted keys, indented as transformers dumps it), cut as
    /// the suite's Python side cuts them: tensors in order, a new shard once the next would pass
    /// <paramref name="maxShardBytes"/> (a shard holds at least one), a tensor over memory already placed
    /// going to that tensor's shard. For safetensors the tied names are first dropped as save_model drops them,
    /// the alias kept in the metadata of the shard holding the tensor it names (the index lists stored names).
    /// <see cref="HalfTheModel(IEnumerable{KeyValuePair{string, Tensor}})"/> gives the suite's split. Every file
    /// is written atomically (<see cref="AtomicFile"/>), the index last.
    /// </summary>
    public static void SaveFolder(string folder, IEnumerable<KeyValuePair<string, Tensor>> stateDict, bool safetensors = true, long? maxShardBytes = null) =>
        SaveFolder(folder, Safetensors.ToPyDict(stateDict), TorchSharpTensors.Instance, safetensors, maxShardBytes);

    /// <summary><see cref="SaveFolder(string, IEnumerable{KeyValuePair{string, Tensor}}, bool, long?)"/> for <paramref name="backend"/>'s tensors.</summary>
    public static void SaveFolder(string folder, PyDict stateDict, TensorBackend backend, bool safetensors = true, long? maxShardBytes = null)
    {
        if (maxShardBytes is < 1)
            throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "a shard holds at least one byte");
        Directory.CreateDirectory(folder);
        if (maxShardBytes is not { } limit)
        {
            if (safetensors)
                Safetensors.Save(Path.Combine(folder, SafeSingle), stateDict, backend);
            else
                TorchCheckpoint.Save(Path.Combine(folder, BinSingle), Ordered(stateDict), backend);
            return;
        }
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        if (safetensors)
        {
            var plan = Safetensors.Plan(Path.Combine(folder, SafeIndex), stateDict, backend);
            var shards = Split(plan.Items.Select(i => (i.Name, Key: (object)i.Name, i.Info.ByteCount)), limit);
            for (int k = 0; k < shards.Count; k++)
            {
                var name = $"model-{k + 1:D5}-of-{shards.Count:D5}.safetensors";
                var names = shards[k].ToHashSet(StringComparer.Ordinal);
                var items = plan.Items.Where(i => names.Contains(i.Name)).ToList();
                var aliases = plan.Aliases.Where(a => names.Contains(a.Value));
                Safetensors.Write(Path.Combine(folder, name), items, Safetensors.Metadata(null, aliases), backend);
                foreach (var i in items)
                    weightMap[i.Name] = name;
                total += items.Sum(i => i.Info.ByteCount);
            }
            WriteIndex(Path.Combine(folder, SafeIndex), total, weightMap);
            return;
        }
        var units = Units(Path.Combine(folder, BinIndex), stateDict, backend);
        var binShards = Split(units.Select(u => (u.Name, u.Key, u.Bytes)), limit);
        total = units.Where(u => u.First).Sum(u => u.Bytes);
        for (int k = 0; k < binShards.Count; k++)
        {
            var name = $"pytorch_model-{k + 1:D5}-of-{binShards.Count:D5}.bin";
            var shard = new PyDict();
            foreach (var key in binShards[k])
            {
                shard.Add(key, stateDict[key]);
                weightMap[key] = name;
            }
            TorchCheckpoint.Save(Path.Combine(folder, name), shard, backend);
        }
        WriteIndex(Path.Combine(folder, BinIndex), total, weightMap);
    }

    private static PyDict Ordered(PyDict dict)
    {
        if (dict.Ordered)
            return dict;
        var result = new PyDict(ordered: true);
        foreach (var (k, v) in dict)
            result.Add(k, v);
        return result;
    }

    /// <summary>Each entry with what identifies its memory (tied tensors share it), its bytes, and whether it is the first over that memory.</summary>
    private static List<(string Name, object Key, long Bytes, bool First)> Units(string? path, PyDict stateDict, TensorBackend backend)
    {
        var result = new List<(string, object, long, bool)>();
        var seen = new HashSet<object>();
        foreach (var (key, value) in stateDict)
        {
            if (key is not string name || value is null || !backend.IsTensor(value))
                throw new CheckpointFormatException(path, key as string, $"is not a state dict: {PyDict.Describe(key)} holds {PyDict.Kind(value)}, not a tensor");
            var info = backend.Describe(value);
            var identity = info.Identity ?? name;
            result.Add((name, identity, info.ByteCount, seen.Add(identity)));
        }
        return result;
    }

    /// <summary>layouts.split_into_shards: in order, a name whose memory is placed joins that shard; otherwise a new
    /// shard starts when the current one is not empty and the tensor would take it past <paramref name="limit"/>.</summary>
    private static List<List<string>> Split(IEnumerable<(string Name, object Key, long Bytes)> units, long limit)
    {
        var shards = new List<List<string>>();
        var placed = new Dictionary<object, int>();
        long current = 0;
        foreach (var (name, key, bytes) in units)
        {
            if (placed.TryGetValue(key, out var at))
            {
                shards[at].Add(name);
                continue;
            }
            if (shards.Count == 0 || (current + bytes > limit && shards[^1].Count > 0))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(name);
            placed[key] = shards.Count - 1;
            current += bytes;
        }
        if (shards.Count == 0)
            shards.Add([]);
        return shards;
    }

    /// <summary>The index as Python's <c>json.dumps(index, indent=2, sort_keys=True) + "\n"</c> writes it (ASCII, non-ASCII as \uXXXX).</summary>
    private static void WriteIndex(string path, long total, SortedDictionary<string, string> weightMap)
    {
        var sb = new StringBuilder();
        sb.Append("{\n  \"metadata\": {\n    \"total_size\": ").Append(total.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append("\n  },\n  \"weight_map\": {");
        sb.AppendJoin(",", weightMap.Select(w => $"\n    {JsonText.Quote(w.Key, asciiOnly: true)}: {JsonText.Quote(w.Value, asciiOnly: true)}"));
        sb.Append(weightMap.Count > 0 ? "\n  }\n}\n" : "}\n}\n");
        var bytes = Encoding.ASCII.GetBytes(sb.ToString());
        AtomicFile.Write(path, file =>
        {
            RandomAccess.Write(file, bytes, 0);
            return bytes.Length;
        });
    }
}
