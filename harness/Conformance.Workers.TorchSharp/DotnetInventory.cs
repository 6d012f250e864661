using System.Security.Cryptography;
using System.Text.Json.Nodes;
using TorchCheckpoints;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// `check --dotnet`: the inventory without Python. A torch.save zip is read by the codec into raw tensors
/// (<see cref="RawTensors"/>: key, dtype, shape, the SHA-256 of the row-major bytes, the location it was saved
/// from), other formats by TorchSharp's own readers; the same fields Python's check.inspect gives, so the
/// orchestrator judges the readers against it in the same way.
/// </summary>
public static class DotnetInventory
{
    public static (string Format, JsonObject Inventory) Read(string path)
    {
        var size = new FileInfo(path).Length;
        var format = size == 0 ? "empty" : FileFormats.Sniff(path);
        if (format == "other") format = NativeKind(path);
        var inv = new JsonObject { ["format"] = format, ["bytes"] = size, ["read_by"] = "TorchCheckpoints and TorchSharp, no PyTorch (--dotnet)" };
        var tensors = new JsonArray();
        var storage = new JsonArray();
        var others = new JsonArray();
        try
        {
            switch (format)
            {
                case "torch_zip":
                    var value = TorchCheckpoint.Load(path, RawTensors.Instance).Value;
                    if (value is PyDict top)
                        inv["top_level"] = new JsonObject { ["type"] = "dict", ["keys"] = new JsonArray(top.Select(kv => (JsonNode)Convert.ToString(kv.Key, System.Globalization.CultureInfo.InvariantCulture)!).ToArray()) };
                    foreach (var (key, leaf) in Walk(value, ""))
                    {
                        if (leaf is RawTensor raw)
                        {
                            tensors.Add(new JsonObject
                            {
                                ["key"] = key, ["dtype"] = raw.Dtype.Name.Replace("torch.", "", StringComparison.Ordinal),
                                ["shape"] = new JsonArray(raw.Shape.Select(d => (JsonNode)d).ToArray()),
                                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(raw.ToContiguousBytes())),
                            });
                            storage.Add(new JsonObject { ["key"] = key, ["location"] = raw.Storage.Location, ["offset"] = raw.StorageOffset });
                        }
                        else others.Add(new JsonObject { ["key"] = key, ["value"] = Convert.ToString(leaf, System.Globalization.CultureInfo.InvariantCulture) ?? "None" });
                    }
                    break;
                case "torchscript":
                    foreach (var t in Observe.DescribeStateDict(jit.load(path).state_dict().ToList())) tensors.Add(t!.DeepClone());
                    break;
                case "safetensors":
                    foreach (var t in Observe.DescribeStateDict(global::TorchSharp.PyBridge.Safetensors.LoadStateDict(path).ToList())) tensors.Add(t!.DeepClone());
                    break;
                case "torchsharp_native":
                    foreach (var t in Observe.DescribeStateDict(ReadNative(path))) tensors.Add(t!.DeepClone());
                    break;
                case "torchsharp_tensor":
                    foreach (var t in Observe.DescribeStateDict([KeyValuePair.Create("", Tensor.Load(path))])) tensors.Add(t!.DeepClone());
                    break;
                case "torchsharp_optimizer":
                    inv["inventory_error"] = "TorchSharp's optimizer format: only optimizer.load_state_dict reads its tensors";
                    break;
                default:
                    inv["inventory_error"] = $"no .NET reader reads a {format} file";
                    break;
            }
        }
        catch (Exception e)
        {
            inv["inventory_error"] = $"{e.GetType().Name}: {string.Join(" ", e.Message.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))}";
        }
        inv["tensors"] = tensors;
        inv["storage"] = storage;
        inv["others"] = others;
        return (format, inv);
    }

    /// <summary>A file that is no zip or safetensors: TorchSharp's Module.save, Tensor.Save, optimizer.save_state_dict, or unknown.</summary>
    private static string NativeKind(string path)
    {
        try { ReadNative(path); return "torchsharp_native"; } catch (Exception) { }
        try { using var t = Tensor.Load(path); return "torchsharp_tensor"; } catch (Exception) { }
        try
        {
            using var r = new BinaryReader(File.OpenRead(path));
            var name = r.ReadString();
            if (name.Length is > 0 and <= 32 && name.All(char.IsAsciiLetter)) return "torchsharp_optimizer";
        }
        catch (Exception) { }
        return "unknown";
    }

    /// <summary>TorchSharp's Module.save layout: LEB128(count), then per entry a .NET string key and Tensor.Save's tensor.</summary>
    private static List<KeyValuePair<string, Tensor>> ReadNative(string path)
    {
        using var stream = File.OpenRead(path);
        using var r = new BinaryReader(stream);
        var count = Leb(r);
        if (count < 0 || count > stream.Length) throw new InvalidDataException("not a Module.save entry count");
        var result = new List<KeyValuePair<string, Tensor>>();
        for (long i = 0; i < count; i++)
        {
            var key = r.ReadString();
            var dtype = (ScalarType)Leb(r);
            var shape = new long[Leb(r)];
            for (int d = 0; d < shape.Length; d++) shape[d] = Leb(r);
            var t = empty(shape, dtype);
            var bytes = r.ReadBytes(checked((int)(t.NumberOfElements * t.ElementSize)));
            if (bytes.Length != t.NumberOfElements * t.ElementSize) throw new EndOfStreamException($"'{key}' ends early");
            t.bytes = bytes;
            result.Add(KeyValuePair.Create(key, t));
        }
        if (stream.Position != stream.Length) throw new InvalidDataException("bytes after the last entry");
        return result;
    }

    private static long Leb(BinaryReader r)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            var b = r.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("a LEB128 number longer than 64 bits");
    }

    /// <summary>Leaves of a loaded object with Python check's keys (<see cref="LoadedTree"/>), the codec's raw tensors being the tensors.</summary>
    private static IEnumerable<(string Key, object? Leaf)> Walk(object? value, string key) => LoadedTree.Leaves(value, v => v is RawTensor, key);
}
