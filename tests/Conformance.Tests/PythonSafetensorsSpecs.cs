using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Tests.Codec;
using TorchCheckpoints;

namespace Conformance.Tests;

/// <summary>
/// TorchCheckpoints' safetensors against the real one: safetensors 0.8 with PyTorch 2.14 in the forky
/// rootfs (the one with every dtype: trixie's 0.4.5 has no complex64 nor unsigned types). Python reads
/// what <see cref="Safetensors.Save(string, PyDict, TensorBackend, IReadOnlyDictionary{string, string}?)"/>
/// wrote, tensor for tensor, and writes the same bytes for it; the codec reads what
/// <c>safetensors.torch.save_file</c> and <c>save_model</c> (tied weights) wrote.
/// </summary>
[Trait("Category", "runtime")]
public sealed class PythonSafetensorsSpecs
{
    private const string Rootfs = "/var/cache/torch-conformance/rootfs-forky";

    // Each tensor of a safetensors file as [dtype, shape, bytes in hex]; the metadata; and whether
    // st.save of the file's tensors (aliases dropped) with its metadata gives the file's own bytes (but for
    // the metadata's order, which safetensors takes from a hash map).
    private const string Digest = """
        import json, sys, torch, safetensors, safetensors.torch as st
        def hexof(t):
            t = t.contiguous().reshape(-1)
            return bytes((torch.view_as_real(t) if t.is_complex() else t).contiguous().reshape(-1).view(torch.uint8).tolist()).hex()
        def digest(path):
            raw = open(path, "rb").read()
            meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]).get("__metadata__", {})  # in the file's order (f.metadata() is a hash map's)
            sd = st.load_file(path)
            tensors = {k: [str(v.dtype), list(v.shape), hexof(v)] for k, v in sd.items()}
            # safetensors writes __metadata__ in a hash map's order (it varies run to run): the same bytes but for that order.
            def parts(b):
                n = int.from_bytes(b[:8], "little")
                pairs = json.loads(b[8:8 + n], object_pairs_hook=list)
                return n, [p for p in pairs if p[0] != "__metadata__"], dict(dict(pairs).get("__metadata__", [])), b[8 + n:]
            same = parts(st.save(sd, metadata=meta)) == parts(raw)
            return {"keys": list(sd), "tensors": tensors, "metadata": meta, "same_bytes": same}
        if sys.argv[1] == "read":
            print(json.dumps(digest(sys.argv[2])))
        else:
            d = {"f64": torch.randn(2, 3, dtype=torch.float64), "f32": torch.randn(4), "f16": torch.randn(3).half(), "bf16": torch.randn(3).bfloat16(),
                 "i64": torch.arange(5), "i32": torch.arange(3, dtype=torch.int32), "i16": torch.arange(3, dtype=torch.int16), "i8": torch.arange(-3, 3, dtype=torch.int8),
                 "u8": torch.arange(6, dtype=torch.uint8), "bool": torch.tensor([True, False, True]), "u16": torch.arange(4).to(torch.uint16),
                 "u32": torch.arange(4).to(torch.uint32), "u64": torch.arange(4).to(torch.uint64), "f8e4": torch.randn(5).to(torch.float8_e4m3fn),
                 "f8e5": torch.randn(5).to(torch.float8_e5m2), "c64": torch.randn(2, dtype=torch.complex64), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5)}
            st.save_file(d, sys.argv[2], metadata={"format": "pt"})
            m = torch.nn.Sequential(torch.nn.Embedding(6, 4), torch.nn.Linear(4, 6, bias=False))
            m[1].weight = m[0].weight
            st.save_model(m, sys.argv[3], metadata={"format": "pt"})
            print(json.dumps({"all": digest(sys.argv[2]), "tied": {"keys": list(m.state_dict()), "tensors": {k: [str(v.dtype), list(v.shape), hexof(v)] for k, v in m.state_dict().items()}}}))
        """;

    private static JsonNode Python(params string[] args)
    {
        if (!File.Exists(Path.Combine(Rootfs, "usr/bin/python3")) || !Directory.Exists(Path.Combine(Rootfs, CodecSpecs.Scratch("").TrimStart('/'))))
            MatrixFixture.SkipOrFailWhenMissing($"the forky rootfs ({Rootfs}) with this checkout mounted is needed to run safetensors 0.8");
        var (code, stdout, stderr) = Discovery.Run(["chroot", Rootfs, "/usr/bin/python3", "-c", Digest, .. args], TimeSpan.FromSeconds(180));
        Assert.True(code == 0, $"python exited {code}: {stderr}");
        return JsonNode.Parse(stdout)!;
    }

    private static string Hex(RawTensor t) => Convert.ToHexStringLower(t.ToContiguousBytes());

    [SkippableFact(Timeout = 300_000)]
    public async Task Python_safetensors_reads_what_Save_wrote_and_writes_the_same_bytes_for_it()
    {
        await Task.Yield();
        var path = CodecSpecs.Scratch("to-python.safetensors");
        var emb = SafetensorsSpecs.Tensor(TorchDtype.Float32, [6, 4], 1);
        var sd = new PyDict(ordered: true) { { "emb.weight", emb }, { "head.weight", emb } };
        int seed = 2;
        foreach (var dtype in new[] { TorchDtype.UInt16, TorchDtype.UInt32, TorchDtype.UInt64, TorchDtype.Float8E4M3Fn, TorchDtype.Float8E5M2 }.Concat(TorchDtype.All.Where(d => d != TorchDtype.Complex128)))
            sd.Add(dtype.Name["torch.".Length..], SafetensorsSpecs.Tensor(dtype, [2, 3], seed++));
        Safetensors.Save(path, sd, RawTensors.Instance);

        var digest = Python("read", path);
        Assert.True(digest["same_bytes"]!.GetValue<bool>(), $"st.save of what Python read gives other bytes than {path}");
        Assert.Equal("emb.weight", digest["metadata"]!["head.weight"]!.GetValue<string>());
        Assert.Equal("pt", digest["metadata"]!["format"]!.GetValue<string>());
        var tensors = digest["tensors"]!.AsObject();
        Assert.Equal(sd.Count - 1, tensors.Count); // head.weight is an alias, not a tensor of the file
        foreach (var (key, value) in sd)
        {
            if ((string)key == "head.weight") continue;
            var t = (RawTensor)value!;
            var py = tensors[(string)key]!.AsArray();
            Assert.Equal(t.Dtype.Name, py[0]!.GetValue<string>());
            Assert.Equal(t.Shape, py[1]!.AsArray().Select(d => d!.GetValue<long>()));
            Assert.Equal(Hex(t), py[2]!.GetValue<string>());
        }
        // load_file's order is the file's byte order, as Load's.
        Assert.Equal(digest["keys"]!.AsArray().Select(k => k!.GetValue<string>()), Safetensors.Load(path, RawTensors.Instance).Keys.Cast<string>().Where(k => k != "head.weight"));
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task Load_reads_what_save_file_and_save_model_wrote_tied_weights_re_tied()
    {
        await Task.Yield();
        var all = CodecSpecs.Scratch("from-python-all.safetensors");
        var tied = CodecSpecs.Scratch("from-python-tied.safetensors");
        var python = Python("write", all, tied);

        var read = Safetensors.Load(all, RawTensors.Instance);
        Assert.Equal(python["all"]!["keys"]!.AsArray().Select(k => k!.GetValue<string>()), read.Keys.Cast<string>());
        Check(python["all"]!["tensors"]!.AsObject(), read);

        var model = Safetensors.Load(tied, RawTensors.Instance);
        Assert.Equal(python["tied"]!["keys"]!.AsArray().Select(k => k!.GetValue<string>()).Order(), model.Keys.Cast<string>().Order());
        Check(python["tied"]!["tensors"]!.AsObject(), model);
        Assert.Same(model["0.weight"], model["1.weight"]);
    }

    private static void Check(JsonObject expected, PyDict actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        foreach (var (key, value) in expected)
        {
            var t = (RawTensor)actual[key]!;
            var py = value!.AsArray();
            Assert.Equal(py[0]!.GetValue<string>(), t.Dtype.Name);
            Assert.Equal(py[1]!.AsArray().Select(d => d!.GetValue<long>()), t.Shape);
            Assert.Equal(py[2]!.GetValue<string>(), Hex(t));
        }
    }
}
