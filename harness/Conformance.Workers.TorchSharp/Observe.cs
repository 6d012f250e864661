using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conformance.Workers.TorchSharp.Models;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>Observations of state dicts and outputs; twin of python/torchconformance/observe.py.</summary>
public static class Observe
{
    /// <summary>
    /// One table from TorchSharp dtypes to the wire names shared with the Python side: the dtype table
    /// (catalogue/dtypes.json), each dtype this TorchSharp's ScalarType has.
    /// </summary>
    public static readonly IReadOnlyDictionary<ScalarType, string> DtypeNames = DtypeTable.Present.ToDictionary(p => p.Type, p => p.Name);

    /// <summary>Quantized dtypes: the integer representation's bytes, then the quantization parameters (<see cref="QuantizedParams"/>).</summary>
    private static readonly IReadOnlyDictionary<ScalarType, string> QuantizedNames = new Dictionary<ScalarType, string>
    {
        [ScalarType.QInt8] = "qint8",
        [ScalarType.QUInt8] = "quint8",
        [ScalarType.QInt32] = "qint32",
    };

    /// <summary>TorchSharp 0.107 has no qscheme(): a per-tensor quantized tensor refuses q_per_channel_axis.</summary>
    public static bool IsPerChannel(Tensor t)
    {
        try { t.q_per_channel_axis(); return true; }
        catch (System.Runtime.InteropServices.ExternalException) { return false; }
    }

    /// <summary>A quantized tensor's scheme, scales (float64), zero points (int64) and axis, as bytes; twin of observe.quantized_params.</summary>
    public static byte[] QuantizedParams(Tensor t)
    {
        var bytes = new List<byte>();
        if (IsPerChannel(t))
        {
            bytes.AddRange("per_channel"u8.ToArray());
            bytes.AddRange(BitConverter.GetBytes((long)t.q_per_channel_axis()));
            using var scales = t.q_per_channel_scales().to(ScalarType.Float64).contiguous();
            using var zeros = t.q_per_channel_zero_points().to(ScalarType.Int64).contiguous();
            bytes.AddRange(scales.bytes.ToArray());
            bytes.AddRange(zeros.bytes.ToArray());
        }
        else
        {
            bytes.AddRange("per_tensor"u8.ToArray());
            bytes.AddRange(BitConverter.GetBytes((double)t.q_scale()));
            bytes.AddRange(BitConverter.GetBytes((long)t.q_zero_point()));
        }
        return bytes.ToArray();
    }

    public static JsonObject DescribeTensor(string key, Tensor t)
    {
        if (t.is_quantized())
        {
            using var q = t.detach().cpu();
            using var ints = q.int_repr().contiguous();
            return new JsonObject
            {
                ["key"] = key,
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["dtype"] = QuantizedNames.TryGetValue(t.dtype, out var qname) ? qname : t.dtype.ToString(),
                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData([.. ints.bytes.ToArray(), .. QuantizedParams(q)])),
            };
        }
        // The values libtorch gives, as observe.tensor_bytes hashes them: a conjugate or negative view's
        // storage holds other values than the tensor, and contiguous() keeps the bit instead of applying it.
        using var c = t.detach().cpu().resolve_conj().resolve_neg().contiguous();
        var hash = Convert.ToHexStringLower(SHA256.HashData(c.bytes));
        return new JsonObject
        {
            ["key"] = key,
            ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
            ["dtype"] = DtypeNames.TryGetValue(t.dtype, out var name) ? name : t.dtype.ToString(),
            ["sha256"] = hash,
        };
    }

    /// <summary>Pairs of keys whose tensors start at the same memory (tied weights), in key order.</summary>
    public static JsonArray Aliases(IEnumerable<KeyValuePair<string, Tensor>> stateDict)
    {
        var first = new Dictionary<nint, string>();
        var pairs = new JsonArray();
        foreach (var (key, t) in stateDict)
        {
            if (t.numel() == 0 || !t.is_contiguous()) continue;
            nint ptr;
            unsafe
            {
                fixed (byte* p = t.bytes) ptr = (nint)p;
            }
            if (first.TryGetValue(ptr, out var earlier)) pairs.Add(new JsonArray(earlier, key));
            else first[ptr] = key;
        }
        return pairs;
    }

    public static JsonArray DescribeStateDict(IEnumerable<KeyValuePair<string, Tensor>> stateDict) =>
        new(stateDict.Select(kv => (JsonNode)DescribeTensor(kv.Key, kv.Value)).ToArray());

    /// <summary>JSON has no NaN or infinities: send those as strings ("NaN", "Infinity", "-Infinity").</summary>
    private static JsonNode WireFloat(double v) =>
        double.IsFinite(v) ? v : double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    public static JsonObject DescribeOutputs(Tensor y)
    {
        using var d = y.detach().cpu().to(ScalarType.Float64).contiguous();
        return new JsonObject
        {
            ["shape"] = new JsonArray(y.shape.Select(s => (JsonNode)s).ToArray()),
            ["values"] = new JsonArray(d.data<double>().ToArray().Select(WireFloat).ToArray()),
        };
    }
}
