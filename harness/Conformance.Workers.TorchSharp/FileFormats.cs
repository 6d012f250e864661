using System.IO.Compression;
using TorchCheckpoints;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// What a file is, by its bytes: so that a reader's bare exception (PyBridge's InvalidCastException on a
/// checkpoint dict, its "Length of JSON exceeded int.MaxValue" on a zip given as safetensors) becomes an
/// error that names the file, the format found and what to do. Twin of check.sniff in Python.
/// </summary>
public static class FileFormats
{
    public static string Sniff(string path)
    {
        Span<byte> head = stackalloc byte[16];
        int n;
        using (var f = File.OpenRead(path)) n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];
        if (n >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8))
        {
            try
            {
                using var zip = ZipFile.OpenRead(path);
                if (zip.Entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal))) return "torchscript";
                if (zip.Entries.Any(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal))) return "torch_zip";
                return "zip_other";
            }
            catch (InvalidDataException) { return "zip_damaged"; }
        }
        if (n >= 3 && head[0] == 0x80 && head[1] == 0x02 && head[2] == 0x8a) return "torch_legacy";
        if (n >= 9 && head[8] == (byte)'{' && BitConverter.ToUInt64(head[..8]) is var len && len > 0 && len <= (ulong)new FileInfo(path).Length - 8) return "safetensors";
        return "other";
    }

    private static readonly IReadOnlyDictionary<string, string> Names = new Dictionary<string, string>
    {
        ["torchscript"] = "a TorchScript archive (torch.jit.save)",
        ["torch_zip"] = "a torch.save zip file",
        ["torch_legacy"] = "a legacy torch.save file (torch < 1.6)",
        ["safetensors"] = "a safetensors file",
        ["zip_other"] = "a zip file that is not a PyTorch file",
        ["zip_damaged"] = "a damaged zip file",
        ["other"] = "not a PyTorch, safetensors or TorchScript file (a TorchSharp Module.save file, or something else)",
    };

    private static readonly IReadOnlyDictionary<string, string> Wanted = new Dictionary<string, string>
    {
        ["pickle"] = "torch_zip", ["pickle_legacy"] = "torch_legacy", ["safetensors"] = "safetensors", ["torchsharp_native"] = "other",
    };

    /// <summary>
    /// The clear error for a failed load on <paramref name="route"/>, or null when the bare one is already
    /// about the right kind of file: a format other than the route's, or a torch.save dict that is not a
    /// state dict (a training checkpoint), is said so, with the remedy.
    /// </summary>
    public static string? Explain(string route, string path, Exception failure, IReadOnlyCollection<string>? modelKeys = null)
    {
        string found;
        if (!File.Exists(path)) return null; // a folder (Hugging Face layouts) or nothing: the reader's own error stands
        try { found = Sniff(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        var pybridgeZip = route is "pickle" or "pickle_legacy";
        if (found == "torchscript")
            return $"{path} is {Names[found]}, not a state dict: load it with torch.jit.load(path) in TorchSharp ({failure.GetType().Name} from the {route} reader)";
        if (Wanted.TryGetValue(route, out var want) && want != found && !(pybridgeZip && found is "torch_zip" or "torch_legacy"))
            return $"{path} is {Names[found]}, not what the {route} route reads ({Names[want]}); {failure.GetType().Name}: {failure.Message}";
        // PyBridge's strict load says only "not identical to the target dictionary": name the keys, as PyTorch does.
        if (modelKeys is not null && failure is InvalidOperationException && failure.Message.Contains("not identical", StringComparison.Ordinal)
            && FileKeys(route, path) is { } fileKeys)
        {
            var missing = modelKeys.Where(k => !fileKeys.Contains(k)).ToList();
            var unexpected = fileKeys.Where(k => !modelKeys.Contains(k)).ToList();
            string List(List<string> keys) => string.Join(", ", keys.Take(5).Select(k => $"\"{k}\"")) + (keys.Count > 5 ? $", … ({keys.Count} in all)" : "");
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"Missing key(s) in state_dict: {List(missing)}.");
            if (unexpected.Count > 0) parts.Add($"Unexpected key(s) in state_dict: {List(unexpected)}.");
            var prefix = new[] { "module.", "_orig_mod." }.FirstOrDefault(p => fileKeys.Count > 0 && fileKeys.All(k => k.StartsWith(p, StringComparison.Ordinal)));
            if (prefix is not null) parts.Add($"Every key in the file starts with '{prefix}': strip the prefix (torch.save({{k.removeprefix('{prefix}'): v for k, v in sd.items()}}, path)).");
            if (parts.Count > 0) return $"{path}: {failure.GetType().Name}: {failure.Message} {string.Join(" ", parts)}";
        }
        if (found == "torch_zip" && failure is InvalidCastException)
        {
            try
            {
                // Only a dict holding more than tensors is a checkpoint; a state dict's own cast failure stays as it is.
                if (TorchCheckpoint.Load(path, RawTensors.Instance).Value is PyDict top && !top.All(kv => kv.Value is RawTensor))
                {
                    var keys = top.Select(kv => kv.Key?.ToString() ?? "").ToList();
                    var model = keys.FirstOrDefault(k => k.Contains("model", StringComparison.OrdinalIgnoreCase)) ?? keys.FirstOrDefault() ?? "?";
                    return $"{path} is a dict of {keys.Count} entries ({string.Join(", ", keys.Take(6))}{(keys.Count > 6 ? ", …" : "")}), a training checkpoint, not a bare state dict, " +
                           $"which is all load_py reads: load its '{model}' entry with TorchCheckpoint.Load(path) and module.load_state_dict, or re-save torch.save(ckpt['{model}'], path) " +
                           $"(PyBridge said: {failure.GetType().Name}: {failure.Message})";
                }
            }
            catch (Exception e) when (e is CheckpointFormatException or IOException) { }
        }
        return null;
    }

    /// <summary>The file's top-level keys, read without libtorch (torch.save zip or safetensors), or null.</summary>
    private static IReadOnlyList<string>? FileKeys(string route, string path)
    {
        try
        {
            if (route == "safetensors")
            {
                using var f = File.OpenRead(path);
                var length = new byte[8];
                f.ReadExactly(length);
                var n = BitConverter.ToInt64(length);
                if (n <= 0 || n > Math.Min(f.Length - 8, 100 << 20)) return null;
                var header = new byte[n];
                f.ReadExactly(header);
                return System.Text.Json.Nodes.JsonNode.Parse(header)?.AsObject().Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
            }
            return TorchCheckpoint.Load(path, RawTensors.Instance).Value is PyDict d ? d.Keys.Select(k => k.ToString() ?? "").ToList() : null;
        }
        catch (Exception e) when (e is CheckpointFormatException or IOException or System.Text.Json.JsonException) { return null; }
    }
}
