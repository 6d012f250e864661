using System.Text.Json.Nodes;
using TorchCheckpoints;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// `conformance check`, TorchSharp side: every reader a .NET user has for a file, run on it, each
/// reporting what it read (key, dtype, shape, SHA-256) or its error. The orchestrator compares the bytes
/// with PyTorch's and gives the verdict. Readers that need a module (load_py, load_safetensors,
/// load_checkpoint, Module.load) load into a <see cref="MirrorModule"/> built from the keys, dtypes and
/// shapes PyTorch read, so they run strict without the user's model class.
/// </summary>
public static class Check
{
    public static JsonNode Run(JsonObject args)
    {
        var path = args["path"]?.GetValue<string>() ?? throw new ArgumentException("missing argument 'path'");
        var format = args["format"]?.GetValue<string>() ?? "unknown";
        // `check --dotnet`: this worker also makes the inventory (no Python), and the module readers build from its keys.
        JsonObject? inventory = null;
        if (args["inventory"]?.GetValue<bool>() == true)
        {
            (format, inventory) = DotnetInventory.Read(path);
            var flat = (inventory["tensors"] as JsonArray ?? []).OfType<JsonObject>().ToList();
            if (!flat.Any(t => t["key"]!.GetValue<string>().Contains('/')))
                args["keys"] = new JsonArray(flat.Select(t => (JsonNode)new JsonObject { ["key"] = t["key"]!.DeepClone(), ["dtype"] = t["dtype"]!.DeepClone(), ["shape"] = t["shape"]!.DeepClone() }).ToArray());
        }
        var keys = (args["keys"] as JsonArray ?? []).Select(k => new MirrorKey(
            k!["key"]!.GetValue<string>(), k["dtype"]!.GetValue<string>(), k["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray())).ToList();
        var readers = new JsonArray();
        void Add(string name, Func<IEnumerable<KeyValuePair<string, Tensor>>> read)
        {
            var entry = new JsonObject { ["reader"] = name };
            using var scope = NewDisposeScope();
            try
            {
                entry["status"] = "read";
                entry["tensors"] = Observe.DescribeStateDict(read().ToList());
            }
            catch (NotApplicableException e)
            {
                entry["status"] = "not_run";
                entry["message"] = "not applicable: " + e.Message;
            }
            catch (Exception e)
            {
                entry.Remove("tensors");
                entry["status"] = "failed";
                entry["message"] = OneLine($"{e.GetType().Name}: {e.Message}");
            }
            readers.Add(entry);
        }

        switch (format)
        {
            case "torch_zip":
            case "torch_legacy":
                Add("PyBridge PyTorchUnpickler.UnpickleStateDict", () => Flatten(PyTorchUnpickler.UnpickleStateDict(path), ""));
                // On a checkpoint dict (no flat key list) into an empty module: PyBridge's own failure is the evidence.
                Add("PyBridge load_py (strict)", () => Mirror(keys, m => m.load_py(path, strict: true), allowEmpty: true));
                Add("TorchCheckpoints TorchCheckpoint.Load", () => Flatten(TorchCheckpoint.Load(path).Value, ""));
                Add("TorchCheckpoints TorchCheckpoint.LoadMapped", () => Flatten(TorchCheckpoint.LoadMapped(path).Value, ""));
                if (args["optimizer_class"]?.GetValue<string>() is { } optimizerClass)
                {
                    Add($"PyBridge optimizer.load_py ({optimizerClass})", () => OptimizerLoadPy(path, optimizerClass));
                    Add($"TorchCheckpoints optimizer.load_pytorch ({optimizerClass})", () => OptimizerLoadPytorch(path, optimizerClass));
                }
                break;
            case "zip_damaged":
                // Nothing reads a damaged zip; each reader's own words say where it stopped.
                Add("PyBridge PyTorchUnpickler.UnpickleStateDict", () => Flatten(PyTorchUnpickler.UnpickleStateDict(path), ""));
                Add("TorchCheckpoints TorchCheckpoint.Load", () => Flatten(TorchCheckpoint.Load(path).Value, ""));
                break;
            case "safetensors":
                Add("PyBridge Safetensors.LoadStateDict", () => global::TorchSharp.PyBridge.Safetensors.LoadStateDict(path));
                Add("PyBridge load_safetensors (strict)", () => Mirror(keys, m => m.load_safetensors(path, strict: true)));
                // The stored tensors, as the file's other readers give them: Load re-ties save_model's aliases (named in
                // __metadata__) as load_model does, which a reader of the file alone does not.
                Add("TorchCheckpoints Safetensors.Load", () =>
                {
                    var aliases = TorchCheckpoints.Safetensors.Metadata(path).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
                    return TorchCheckpoints.Safetensors.Load(path).Where(kv => !aliases.Contains(kv.Key));
                });
                break;
            case "torchsharp_native":
                Add("TorchSharp Module.load (strict)", () => Mirror(keys, m => m.load(path, strict: true)));
                break;
            case "torchscript":
                Add("TorchSharp torch.jit.load", () => jit.load(path).state_dict());
                Add("TorchCheckpoints TorchCheckpoint.Load", () => Flatten(TorchCheckpoint.Load(path).Value, ""));
                break;
            case "hf_folder":
                Add("PyBridge load_checkpoint (strict)", () => Mirror(keys, m => m.load_checkpoint(path, strict: true, useTqdm: false)));
                break;
            case "torchsharp_tensor":
                Add("TorchSharp Tensor.Load", () => [KeyValuePair.Create("", Tensor.Load(path))]);
                break;
            case "torchsharp_optimizer":
                Add("TorchSharp optimizer.load_state_dict", () => OptimizerStateProbe.Load(path, out _));
                break;
            default:
                break;
        }
        return new JsonObject { ["format"] = format, ["readers"] = readers, ["inventory"] = inventory };
    }

    /// <summary>
    /// torchsharp_adam_state.bin: optimizer.save_state_dict of an Adam (lr 0.01) over a Linear(4, 3) after one
    /// step on ones(2, 4) (seed 0); torchsharp_tensor.bin: Tensor.Save of arange(6) as float32 [2, 3].
    /// </summary>
    public static void WriteSamples(string dir)
    {
        Directory.CreateDirectory(dir);
        manual_seed(0);
        var model = nn.Linear(4, 3);
        var adam = optim.Adam(model.parameters(), lr: 0.01);
        model.forward(ones(2, 4)).sum().backward();
        adam.step();
        adam.save_state_dict(Path.Combine(dir, "torchsharp_adam_state.bin"));
        using var t = arange(6, dtype: float32).reshape(2, 3);
        using var writer = new BinaryWriter(File.Create(Path.Combine(dir, "torchsharp_tensor.bin")));
        t.Save(writer);
    }

    /// <summary>
    /// PyTorch's optimizer.state_dict() file into a TorchSharp optimizer of <paramref name="kind"/> by PyBridge's
    /// optimizer.load_py: the optimizer is built over parameters shaped as the file's state tensors (zeros; [1] for a
    /// parameter without state) with the file's hyperparameters, then loaded; what it holds afterwards, in PyTorch's
    /// layout, is what it read.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> OptimizerLoadPy(string path, string kind)
    {
        var (optimizer, file) = OptimizerFor(path, kind);
        ((global::TorchSharp.Modules.OptimizerHelper)optimizer).load_py(path);
        return Held(optimizer, file);
    }

    /// <summary>The same file by TorchCheckpoints' <c>optimizer.load_pytorch</c>, into the same optimizer.</summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> OptimizerLoadPytorch(string path, string kind)
    {
        var (optimizer, file) = OptimizerFor(path, kind);
        optimizer.load_pytorch(path);
        return Held(optimizer, file);
    }

    /// <summary>
    /// What the optimizer holds, in PyTorch's layout, each step count as a tensor of the file's own step dtype:
    /// TorchSharp keeps a step as a long, so the dtype of the step tensor written back is the writer's choice
    /// (float32, as torch.optim), not something read; the file's (PyBridge writes int64) is what is compared.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> Held(optim.Optimizer optimizer, CheckpointValue file)
    {
        var held = PyTorchOptimizers.StateDict(optimizer);
        var fileState = file["state"];
        foreach (var (index, entries) in held.Dict("state"))
            if (entries is PyDict e && e.TryGetValue("step", out var step) && step is Tensor t && fileState.ContainsKey(index)
                && fileState[(int)(long)index] is var own && own.ContainsKey("step") && own["step"].Value is Tensor original)
                e["step"] = t.to(original.dtype);
        return Flatten(held, "");
    }

    /// <summary>An optimizer of <paramref name="kind"/> over parameters shaped as the file's state tensors (zeros; [1] for a parameter without state), with its hyperparameters.</summary>
    private static (optim.Optimizer Optimizer, CheckpointValue File) OptimizerFor(string path, string kind)
    {
        var sd = TorchCheckpoint.Load(path);
        var group = sd["param_groups"][0].AsDict();
        var state = sd["state"].Value as PyDict ?? new PyDict();
        var indices = ((List<object?>)group["params"]!).Select(Convert.ToInt64).ToList();
        var parameters = indices.Select(i =>
        {
            var first = state.TryGetValue(i, out var s) && s is PyDict d ? d.Select(kv => kv.Value).OfType<Tensor>().FirstOrDefault(t => t.dim() > 0) : null;
            return new global::TorchSharp.Modules.Parameter(zeros(first?.shape ?? [1]));
        }).ToList();
        return (PyTorchOptimizers.Build(kind, parameters, group), sd);
    }

    private static string OneLine(string s) =>
        string.Join(" ", s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)) is var t && t.Length > 500 ? t[..500] : t;

    /// <summary>Every tensor in a loaded object; nested keys join with '/' as on the Python side (<see cref="LoadedTree"/>).</summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> Flatten(object? value, string key) =>
        LoadedTree.Leaves(value, v => v is Tensor, key).Where(l => l.Leaf is Tensor).Select(l => KeyValuePair.Create(l.Key, (Tensor)l.Leaf!));

    internal static IEnumerable<KeyValuePair<string, Tensor>> FlattenPublic(object? value) => Flatten(value, "");

    /// <summary>Builds a module with the file's keys (as PyTorch read them), loads into it, returns its state dict.</summary>
    private static IEnumerable<KeyValuePair<string, Tensor>> Mirror(IReadOnlyList<MirrorKey> keys, Action<nn.Module> load, bool allowEmpty = false)
    {
        if (keys.Count == 0 && !allowEmpty) throw new NotApplicableException("no key list from PyTorch to build the module from (PyTorch could not read the file)");
        var module = MirrorModule.Build(keys);
        load(module);
        return module.state_dict();
    }

    public sealed record MirrorKey(string Key, string Dtype, long[] Shape);

    /// <summary>A module whose state dict has exactly the given keys, dtypes and shapes (zeros), nested by the dots.</summary>
    public sealed class MirrorModule : nn.Module
    {
        private MirrorModule(string name) : base(name) { }

        public static MirrorModule Build(IReadOnlyList<MirrorKey> keys)
        {
            var root = new MirrorModule("Mirror");
            var byName = Observe.DtypeNames.ToDictionary(kv => kv.Value, kv => kv.Key);
            foreach (var k in keys)
            {
                if (!byName.TryGetValue(k.Dtype, out var dtype))
                    throw new NotApplicableException($"TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} has no dtype {k.Dtype} (key '{k.Key}')");
                var parts = k.Key.Split('.');
                var node = root;
                foreach (var part in parts[..^1])
                {
                    var child = node.named_children().FirstOrDefault(c => c.name == part).module as MirrorModule;
                    if (child is null)
                    {
                        child = new MirrorModule(part);
                        node.register_module(part, child);
                    }
                    node = child;
                }
                node.register_buffer(parts[^1], zeros(k.Shape, dtype));
            }
            return root;
        }
    }
}
