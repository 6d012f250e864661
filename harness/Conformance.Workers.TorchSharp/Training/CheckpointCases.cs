using System.Text.Json.Nodes;
using Conformance.Workers.TorchSharp.Models;
using TorchCheckpoints;
using TorchSharp;
using static TorchSharp.torch;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp.Training;

/// <summary>
/// Training checkpoints, TorchSharp side; twin of python/torchconformance/worker/checkpoints.py. The
/// producer trains N steps, saves the seed's {'epoch', 'model_state_dict', 'optimizer_state_dict',
/// 'loss'} with this project's codec, then goes on K more steps (P1). The consumer loads, rebuilds
/// model and optimizer from the file, and goes on the same K steps (P2).
/// </summary>
public static class CheckpointCases
{
    private static readonly JsonNode Shared = CatalogueFiles.Read("cases.json")["checkpoint"]!;
    public static readonly int TrainSteps = Shared["train_steps"]!.GetValue<int>();
    public static readonly int ResumeSteps = Shared["resume_steps"]!.GetValue<int>();
    private static readonly long[] InputShape = Shared["input"]!["floats"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();

    /// <summary>The model every checkpoint case trains (the catalogue's checkpoint.model, a Zoo builder).</summary>
    internal static nn.Module<Tensor, Tensor> NewModel() => Zoo.Build(Shared["model"]!.GetValue<string>());

    /// <summary>
    /// (TorchSharp optimizer kind, PyTorch param group) per optimizer, from the catalogue's optimizers
    /// (python: checkpoints.OPTIMIZERS reads the same entries). Numbers are floats, arrays tuples (betas).
    /// </summary>
    internal static (string Kind, PyDict Group) Spec(string name)
    {
        var spec = CatalogueFiles.Entries(CatalogueFiles.Read("cases.json")["optimizers"]).FirstOrDefault(o => o.Key == name).Value
                   ?? throw new KeyNotFoundException($"unknown optimizer '{name}'");
        var group = new PyDict();
        foreach (var (key, value) in CatalogueFiles.Entries(spec["param_group"]))
            group.Add(key, Value(value));
        return (spec["class"]!.GetValue<string>(), group);

        static object? Value(JsonNode? v) => v switch
        {
            null => null,
            JsonArray a => new PyTuple(a.Select(x => Value(x)).ToArray()),
            JsonValue b when b.GetValueKind() is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => b.GetValue<bool>(),
            _ => v.GetValue<double>(),
        };
    }

    /// <summary>Several models in one file, GAN-style: net -> optimizer, the ckpt_gan case's gan (python: checkpoints.GAN_OPTIMIZERS).</summary>
    private static readonly (string Net, string Optimizer)[] Gan =
        CatalogueFiles.Read("cases.json")["cases"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == "ckpt_gan")!["gan"]!.AsObject()
            .Select(kv => (kv.Key, kv.Value!.GetValue<string>())).ToArray();

    public static JsonObject ProduceGan(string path, long seed)
    {
        manual_seed(seed);
        var nets = Gan.ToDictionary(g => g.Net, _ => NewModel());
        var optimizers = Gan.ToDictionary(g => g.Net, g => { var (kind, group) = Spec(g.Optimizer); return PyTorchOptimizers.Build(kind, nets[g.Net].parameters(), group); });
        for (int step = 0; step < TrainSteps; step++) GanStep(nets, optimizers, step);
        var checkpoint = new PyDict();
        checkpoint.Add("epoch", (long)TrainSteps);
        foreach (var (k, _) in Gan)
        {
            var sd = new PyDict(ordered: true);
            foreach (var (n, t) in nets[k].state_dict()) sd.Add(n, t);
            checkpoint.Add($"net{k}", sd);
            checkpoint.Add($"optimizer{k}", PyTorchOptimizers.StateDict(optimizers[k]));
        }
        TorchCheckpoint.Save(path, checkpoint);
        var saved = DescribeGan(TrainSteps, nets, optimizers);
        for (int step = TrainSteps; step < TrainSteps + ResumeSteps; step++) GanStep(nets, optimizers, step);
        saved["resumed"] = GanParameters(nets);
        return saved;
    }

    public static JsonObject ConsumeGan(string path)
    {
        var checkpoint = TorchCheckpoint.LoadDict(path);
        var nets = new Dictionary<string, nn.Module<Tensor, Tensor>>();
        var optimizers = new Dictionary<string, optim.Optimizer>();
        foreach (var (k, name) in Gan)
        {
            nets[k] = NewModel();
            LoadModel(nets[k], checkpoint[$"net{k}"] as PyDict ?? throw new CheckpointFormatException($"{path}: net{k} is not a dict"), $"{path}: net{k}");
            optimizers[k] = LoadOptimizer(Spec(name).Kind, nets[k], checkpoint[$"optimizer{k}"], $"{path}: optimizer{k}");
        }
        var epoch = (int)PyTorchOptimizers.ToDouble(checkpoint["epoch"], "epoch");
        var loaded = DescribeGan(epoch, nets, optimizers);
        for (int step = epoch; step < epoch + ResumeSteps; step++) GanStep(nets, optimizers, step);
        loaded["resumed"] = GanParameters(nets);
        return loaded;
    }

    private static void GanStep(Dictionary<string, nn.Module<Tensor, Tensor>> nets, Dictionary<string, optim.Optimizer> optimizers, int step)
    {
        foreach (var k in new[] { "D", "G" }) Step(nets[k], optimizers[k], step);
    }

    private static JsonObject DescribeGan(long epoch, Dictionary<string, nn.Module<Tensor, Tensor>> nets, Dictionary<string, optim.Optimizer> optimizers)
    {
        var tensors = new JsonArray();
        foreach (var (k, _) in Gan)
            foreach (var t in Observe.DescribeStateDict(nets[k].state_dict().Select(kv => KeyValuePair.Create($"net{k}.{kv.Key}", kv.Value))))
                tensors.Add(t!.DeepClone());
        var described = new JsonObject();
        foreach (var (k, name) in Gan) described[$"optimizer{k}"] = DescribeOptimizer(optimizers[k], Spec(name).Kind);
        return new JsonObject { ["epoch"] = epoch, ["tensors"] = tensors, ["optimizers"] = described };
    }

    private static JsonObject GanParameters(Dictionary<string, nn.Module<Tensor, Tensor>> nets)
    {
        using var flat = torch.cat(Gan.SelectMany(g => nets[g.Net].parameters()).Select(p => p.detach().reshape(-1).to(ScalarType.Float64)).ToArray());
        return new JsonObject
        {
            ["shape"] = new JsonArray((JsonNode)flat.numel()),
            ["values"] = new JsonArray(flat.data<double>().ToArray().Select(v => (JsonNode)v).ToArray()),
        };
    }

    internal static double Step(nn.Module<Tensor, Tensor> model, optim.Optimizer optimizer, int step)
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
        var loss = model.call(Data.Pattern(InputShape, salt: step + 1)).pow(2).mean();
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }

    /// <summary>
    /// Why TorchSharp cannot carry this optimizer's state, or null. Probed, not assumed: TorchSharp's
    /// LBFGS wraps libtorch's C++ optimizer, and its class offers no state_dict() (0.107), or one that
    /// throws NotImplementedException (later sources), so L-BFGS history (old_dirs, old_stps, ro,
    /// H_diag, ...) can neither be saved nor restored. A TorchSharp whose LBFGS returns a state makes
    /// this null, and the cell then fails on the missing mapping until one is written.
    /// </summary>
    internal static string? Lacks(string optimizerName)
    {
        if (optimizerName != "lbfgs") return null;
        using var p = new global::TorchSharp.Modules.Parameter(zeros(1));
        var lbfgs = optim.LBFGS([p]);
        var version = typeof(torch).Assembly.GetName().Version?.ToString(3);
        const string Context = "so L-BFGS history (old_dirs, old_stps, ro, H_diag, prev_flat_grad, ...) is neither saved nor restored; "
            + "TorchSharp imports PyTorch optimizer state for every optimizer but LBFGS (https://github.com/dotnet/TorchSharp/pull/964)";
        // By reflection: the method is absent in 0.107 and present but unimplemented in later sources.
        var method = lbfgs.GetType().GetMethod("state_dict", Type.EmptyTypes);
        if (method is null) return $"TorchSharp {version}'s LBFGS ({lbfgs.GetType().FullName}) has no state_dict(), {Context}";
        try
        {
            method.Invoke(lbfgs, null);
            return null;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is NotImplementedException)
        {
            return $"TorchSharp {version}'s LBFGS.state_dict() throws NotImplementedException, {Context}";
        }
    }

    public static JsonObject Produce(string optimizerName, string path, long seed)
    {
        if (ScheduledCheckpoints.Handles(optimizerName)) return ScheduledCheckpoints.Produce(optimizerName, path, seed);
        if (Lacks(optimizerName) is { } lacks) throw new NotApplicableException(lacks);
        var (kind, group) = Spec(optimizerName);
        manual_seed(seed);
        var model = NewModel();
        var optimizer = PyTorchOptimizers.Build(kind, model.parameters(), group);
        double loss = 0;
        for (int step = 0; step < TrainSteps; step++) loss = Step(model, optimizer, step);
        var modelState = model.state_dict_py();
        var checkpoint = new PyDict();
        checkpoint.Add("epoch", (long)TrainSteps);
        checkpoint.Add("model_state_dict", modelState);
        checkpoint.Add("optimizer_state_dict", PyTorchOptimizers.StateDict(optimizer));
        checkpoint.Add("loss", loss);
        TorchCheckpoint.Save(path, checkpoint);
        var saved = Describe(TrainSteps, loss, model, optimizer, kind);
        for (int step = TrainSteps; step < TrainSteps + ResumeSteps; step++) Step(model, optimizer, step);
        saved["resumed"] = Parameters(model);
        return saved;
    }

    public static JsonObject Consume(string optimizerName, string path)
    {
        if (ScheduledCheckpoints.Handles(optimizerName)) return ScheduledCheckpoints.Consume(optimizerName, path);
        if (Lacks(optimizerName) is { } lacks) throw new NotApplicableException(lacks);
        var (kind, _) = Spec(optimizerName);
        var checkpoint = TorchCheckpoint.LoadDict(path);
        RequireCheckpoint(checkpoint, path, "model_state_dict", "optimizer_state_dict", "epoch", "loss");
        var model = NewModel();
        LoadModel(model, checkpoint["model_state_dict"] as PyDict ?? throw new CheckpointFormatException($"{path}: model_state_dict is not a dict"), path);
        var optimizer = LoadOptimizer(kind, model, checkpoint["optimizer_state_dict"], $"{path}: optimizer_state_dict");
        var epoch = (int)PyTorchOptimizers.ToDouble(checkpoint["epoch"], "epoch");
        var loss = PyTorchOptimizers.ToDouble(checkpoint["loss"], "loss");
        var loaded = Describe(epoch, loss, model, optimizer, kind);
        model.train();
        for (int step = epoch; step < epoch + ResumeSteps; step++) Step(model, optimizer, step);
        loaded["resumed"] = Parameters(model);
        return loaded;
    }

    /// <summary>A file without the suite's checkpoint keys is named for what it is (a bare state dict, another checkpoint).</summary>
    private static void RequireCheckpoint(PyDict checkpoint, string path, params string[] keys)
    {
        var absent = keys.Where(k => !checkpoint.ContainsKey(k)).ToList();
        if (absent.Count == 0) return;
        var have = checkpoint.Keys.Select(k => k.ToString() ?? "").ToList();
        var listed = string.Join(", ", have.Take(6)) + (have.Count > 6 ? $", … ({have.Count} in all)" : "");
        var what = checkpoint.All(kv => kv.Value is global::TorchSharp.torch.Tensor)
            ? $"a bare state dict ({listed}), not a training checkpoint"
            : $"a dict without {string.Join(", ", absent)} ({listed})";
        throw new CheckpointFormatException(
            $"{path}: this file is {what}; this op reads the suite's checkpoint cases ({{{string.Join(", ", keys)}}}) into their own network. " +
            "For your own file run `conformance check FILE`, which reads any checkpoint with every reader");
    }

    /// <summary>Copies a state dict into the model strictly, in PyTorch's wording (the library's load_state_dict).</summary>
    internal static void LoadModel(nn.Module model, PyDict modelState, string where)
    {
        try
        {
            model.load_state_dict(modelState, strict: true);
        }
        catch (CheckpointFormatException e)
        {
            throw new CheckpointFormatException($"{where}: {e.Message}", e);
        }
    }

    /// <summary>Builds the optimizer from the file's single param group and loads its per-parameter state.</summary>
    internal static optim.Optimizer LoadOptimizer(string kind, nn.Module model, object? stateDict, string where)
    {
        var osd = stateDict as PyDict ?? throw new CheckpointFormatException($"{where} is not a dict");
        try
        {
            return PyTorchOptimizers.Load(kind, model.parameters(), osd);
        }
        catch (CheckpointFormatException e)
        {
            throw new CheckpointFormatException($"{where}: {e.Message}", e);
        }
    }

    /// <param name="groupKeys">keys this producer wrote into the saved param group beside the optimizer's own (an LR scheduler's initial_lr, ...).</param>
    internal static JsonObject Describe(long epoch, double loss, nn.Module model, optim.Optimizer optimizer, string kind, PyDict? groupKeys = null) => new()
    {
        ["epoch"] = epoch,
        ["loss"] = loss,
        ["tensors"] = Observe.DescribeStateDict(model.state_dict()),
        ["optimizer"] = DescribeOptimizer(optimizer, kind, groupKeys),
    };

    internal static JsonObject DescribeOptimizer(optim.Optimizer optimizer, string kind, PyDict? groupKeys = null)
    {
        var sd = ((global::TorchSharp.Modules.OptimizerHelper)optimizer).state_dict();
        var group = ToJson(PyTorchOptimizers.Hyperparameters(optimizer))!.AsObject();
        if (groupKeys is not null)
            foreach (var (k, v) in groupKeys) group[(string)k] = ToJson(v);
        group["params"] = new JsonArray(Enumerable.Range(0, sd.State.Count).Select(i => (JsonNode)i).ToArray());
        var state = new JsonArray();
        for (int i = 0; i < sd.State.Count; i++)
        {
            var entries = new JsonArray();
            foreach (var (name, value) in PyTorchOptimizers.Entries(sd.State[i], asPyTorch: false).OrderBy(kv => (string)kv.Key, StringComparer.Ordinal))
            {
                entries.Add(value switch
                {
                    Tensor t => Observe.DescribeTensor((string)name, t),
                    long l => new JsonObject { ["key"] = (string)name, ["value"] = l, ["representation"] = "int" },
                    double d => new JsonObject { ["key"] = (string)name, ["value"] = d, ["representation"] = "float" },
                    _ => throw new NotSupportedException(name.ToString()),
                });
            }
            if (entries.Count > 0) state.Add(new JsonObject { ["param"] = i, ["entries"] = entries });
        }
        return new JsonObject { ["type"] = kind, ["param_groups"] = new JsonArray(group), ["state"] = state };
    }

    private static JsonNode? ToJson(object? v) => v switch
    {
        null => null,
        bool b => b,
        long l => l,
        double d => d,
        string s => s,
        PyTuple t => new JsonArray(t.Items.Select(ToJson).ToArray()),
        List<object?> l => new JsonArray(l.Select(ToJson).ToArray()),
        PyDict d => new JsonObject(d.Select(kv => KeyValuePair.Create(kv.Key.ToString()!, ToJson(kv.Value)))),
        _ => v.ToString(),
    };

    internal static JsonObject Parameters(nn.Module model)
    {
        using var flat = torch.cat(model.parameters().Select(p => p.detach().reshape(-1).to(ScalarType.Float64)).ToArray());
        return new JsonObject
        {
            ["shape"] = new JsonArray((JsonNode)flat.numel()),
            ["values"] = new JsonArray(flat.data<double>().ToArray().Select(v => (JsonNode)v).ToArray()),
        };
    }
}
