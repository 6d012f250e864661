using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp.PyBridge;
using static TorchSharp.torch;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// The shapes real checkpoints come in, TorchSharp side; twin of
/// python/torchconformance/worker/layouts.py. Hugging Face's folders are read as a TorchSharp user reads
/// them, with PyBridge's own reader of those folders (<c>load_checkpoint</c>: the index JSON, then
/// <c>load_py</c> / <c>load_safetensors</c> per shard), and written where PyBridge can: its pickler
/// and safetensors writer per shard, the index JSON beside them as transformers writes it.
/// </summary>
public static class LayoutRoutes
{
    public const string HfBinSharded = "hf_bin_sharded";
    public const string HfSafetensors = "hf_safetensors";
    public const string HfSafetensorsSharded = "hf_safetensors_sharded";
    /// <summary>The Hugging Face layouts, as cases.json says (a route whose artifact is a <c>.hf</c> folder).</summary>
    public static readonly string[] HfRoutes = [.. RouteTable().Where(r => r.Value?["extension"]?.GetValue<string>() == ".hf").Select(r => r.Key)];

    public const string StripPrefix = "strip_prefix";

    /// <summary>The prefix a route's producer puts before every key, and what writes such files; null for other routes.</summary>
    public static (string Prefix, string Source)? KeyPrefix(string route) =>
        RouteTable().FirstOrDefault(r => r.Key == route).Value is { } r && r["key_prefix"] is { } p ? (p.GetValue<string>(), r["prefix_source"]!.GetValue<string>()) : null;

    /// <summary>Every route's prefix and what writes it, from cases.json (<c>key_prefix</c>, <c>prefix_source</c>).</summary>
    private static readonly (string Prefix, string Source)[] Prefixes = [.. RouteTable().Select(r => KeyPrefix(r.Key)).OfType<(string, string)>()];

    private static IEnumerable<KeyValuePair<string, JsonNode?>> RouteTable() => CatalogueFiles.Entries(CatalogueFiles.Read("cases.json")["routes"]);

    public static void SaveHf(string route, nn.Module model, string folder)
    {
        Directory.CreateDirectory(folder);
        if (route == HfSafetensors)
        {
            // PyBridge's writer has no __metadata__ (so no {"format": "pt"}) and stores tied weights twice.
            DurableFile.Write(Path.Combine(folder, "model.safetensors"), s => model.save_safetensors(s, leaveOpen: true));
            return;
        }
        var shards = Split(model.state_dict());
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        for (int k = 0; k < shards.Count; k++)
        {
            var shard = shards[k];
            var suffix = $"-{k + 1:D5}-of-{shards.Count:D5}";
            var name = route == HfBinSharded ? $"pytorch_model{suffix}.bin" : $"model{suffix}.safetensors";
            if (route == HfBinSharded) DurableFile.Write(Path.Combine(folder, name), s => PyTorchPickler.PickleStateDict(s, shard, leaveOpen: true));
            else DurableFile.Write(Path.Combine(folder, name), s => Safetensors.SaveStateDict(s, shard, leaveOpen: true));
            foreach (var (key, t) in shard)
            {
                weightMap[key] = name;
                total += t.NumberOfElements * t.ElementSize;
            }
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = new JsonObject(weightMap.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        };
        var indexName = route == HfBinSharded ? "pytorch_model.bin.index.json" : "model.safetensors.index.json";
        DurableFile.WriteText(Path.Combine(folder, indexName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Tensors in order, a new shard once the next would pass half the model's bytes (layouts.split_into_shards, without storage sharing: PyBridge writes each tensor as its own storage).</summary>
    private static List<Dictionary<string, Tensor>> Split(IReadOnlyDictionary<string, Tensor> sd)
    {
        long total = sd.Values.Sum(t => t.NumberOfElements * t.ElementSize);
        long limit = Math.Max(1, total / 2), current = 0;
        var shards = new List<Dictionary<string, Tensor>>();
        foreach (var (key, t) in sd)
        {
            long size = t.NumberOfElements * t.ElementSize;
            if (shards.Count == 0 || (current + size > limit && shards[^1].Count > 0)) { shards.Add([]); current = 0; }
            shards[^1][key] = t;
            current += size;
        }
        return shards;
    }

    /// <summary>PyBridge's reader of Hugging Face folders: it finds the index (or the single file) and loads each shard.</summary>
    public static void LoadHf(nn.Module model, string folder, bool strict, Dictionary<string, bool> loaded) =>
        model.load_checkpoint(folder, strict: strict, loadedParameters: loaded, useTqdm: false);

    /// <summary>
    /// A state dict whose keys carry a wrapper's prefix. The plain load (PyBridge's load_py) must refuse
    /// it; its error gains the prefix and the remedy. strip_prefix reads the dict (PyTorchUnpickler),
    /// strips the prefix and loads strictly.
    /// </summary>
    public static void LoadPrefixed(string route, string mode, nn.Module model, string path)
    {
        var (prefix, _) = KeyPrefix(route)!.Value;
        Hashtable raw;
        using (var stream = File.OpenRead(path)) raw = PyTorchUnpickler.UnpickleStateDict(stream);
        var keys = raw.Keys.Cast<string>().ToList();
        if (mode == StripPrefix)
        {
            var stripped = keys.ToDictionary(k => k.StartsWith(prefix, StringComparison.Ordinal) ? k[prefix.Length..] : k, k => (Tensor)raw[k]!);
            model.load_state_dict(stripped, strict: true);
            return;
        }
        try
        {
            model.load_py(path, strict: true);
        }
        catch (Exception e) when (PrefixDiagnosis(keys, model.state_dict().Keys.ToList()) is { Length: > 0 } hint)
        {
            throw new InvalidOperationException($"{hint}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>When every key in the file is a model key behind a wrapper's prefix: the prefix and the remedy; else "" (twin of layouts.prefix_diagnosis).</summary>
    public static string PrefixDiagnosis(IReadOnlyList<string> fileKeys, IReadOnlyList<string> modelKeys)
    {
        foreach (var (prefix, source) in Prefixes)
        {
            if (fileKeys.Count > 0 && fileKeys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))
                && fileKeys.Select(k => k[prefix.Length..]).ToHashSet().SetEquals(modelKeys))
                return $"every key in the file starts with '{prefix}' (saved from {source}): strip the `{prefix}` prefix (remove it from each key before load_state_dict, load mode strip_prefix)";
        }
        return "";
    }

    /// <summary>What a route's producer saves for prefix routes: the state dict, each key behind the prefix.</summary>
    public static void SavePrefixed(string route, nn.Module model, string path)
    {
        var (prefix, _) = KeyPrefix(route)!.Value;
        var sd = new Dictionary<string, Tensor>();
        foreach (var (key, t) in model.state_dict()) sd[prefix + key] = t;
        DurableFile.Write(path, s => PyTorchPickler.PickleStateDict(s, sd, leaveOpen: true));
    }
}
