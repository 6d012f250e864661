using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>
/// Moves optimizer state between TorchSharp's optimizers and PyTorch's
/// <c>optimizer.state_dict()</c> layout: <c>{'state': {index: {name: value}}, 'param_groups': [{hyperparameter: value, 'params': [index...]}]}</c>.
/// One table per optimizer, written out rather than reflected, so every name mapping is visible:
/// PyTorch's <c>betas</c> is TorchSharp's (beta1, beta2); PyTorch keeps <c>step</c> (and NAdam's
/// <c>mu_product</c>) as 0-dim float32 tensors, TorchSharp as long (double).
/// </summary>
public static class PyTorchOptimizers
{
    /// <summary>
    /// PyTorch's <c>optimizer.state_dict()</c> (one param group) as a TorchSharp optimizer of
    /// <paramref name="kind"/> (SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, RAdam) over
    /// <paramref name="parameters"/>, in the order PyTorch's <c>params</c> indices count them:
    /// every hyperparameter, step count and moment buffer is restored, so training resumes as it
    /// would have in PyTorch.
    /// </summary>
    public static optim.Optimizer Load(string kind, IEnumerable<Parameter> parameters, PyDict optimizerStateDict)
    {
        var group = OneGroup(optimizerStateDict);
        var optimizer = Build(kind, parameters, group);
        LoadState(optimizer, optimizerStateDict["state"] as PyDict ?? throw new CheckpointFormatException("optimizer state dict: 'state' is not a dict"));
        Loaded.AddOrUpdate(optimizer, group);
        return optimizer;
    }

    // The param group each optimizer was loaded from: StateDict writes back the keys TorchSharp does not represent.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<optim.Optimizer, PyDict> Loaded = new();

    /// <summary>
    /// <c>optimizer.load_state_dict(torch.load(path))</c> for a TorchSharp optimizer already built over the
    /// model's parameters, as PyTorch's is: every hyperparameter of the file's one param group (PyTorch's
    /// names: <c>betas</c> is TorchSharp's beta1 and beta2) and every parameter's state (step counts,
    /// moment buffers) replace the optimizer's. The file is read by this library's reader, its globals
    /// checked against the allowlist as any checkpoint's.
    /// </summary>
    public static void load_pytorch(this optim.Optimizer optimizer, string path, CheckpointLimits? limits = null)
    {
        var stateDict = TorchCheckpoint.LoadDict(path, limits);
        try
        {
            LoadStateDict(optimizer, stateDict);
        }
        catch (CheckpointFormatException e)
        {
            throw new CheckpointFormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary><c>torch.save(optimizer.state_dict(), path)</c> for a TorchSharp optimizer: what <see cref="load_pytorch"/> and torch.optim's <c>load_state_dict</c> read.</summary>
    public static void save_pytorch(this optim.Optimizer optimizer, string path) => TorchCheckpoint.Save(path, StateDict(optimizer));

    /// <summary><c>optimizer.load_state_dict(stateDict)</c>: PyTorch's optimizer state dict (one param group) into an optimizer built over the same parameters.</summary>
    public static void LoadStateDict(optim.Optimizer optimizer, PyDict stateDict)
    {
        var group = OneGroup(stateDict);
        var options = ((OptimizerHelper)optimizer).state_dict().Options;
        if (options.Count != 1) throw new CheckpointFormatException($"the optimizer has {options.Count} param groups; TorchSharp optimizers here take one");
        var counted = group.TryGetValue("params", out var ps) && ps is List<object?> indices ? indices.Count : -1;
        var states = ((OptimizerHelper)optimizer).state_dict().State.Count;
        if (counted >= 0 && counted != states)
            throw new CheckpointFormatException($"param_groups[0].params lists {counted} parameters; the optimizer has {states}");
        SetHyperparameters(options[0], group);
        LoadState(optimizer, stateDict["state"] as PyDict ?? throw new CheckpointFormatException("optimizer state dict: 'state' is not a dict"));
        Loaded.AddOrUpdate(optimizer, group);
    }

    private static PyDict OneGroup(PyDict optimizerStateDict)
    {
        var groups = optimizerStateDict.TryGetValue("param_groups", out var g) ? g as List<object?> : null;
        if (groups is null) throw new CheckpointFormatException("optimizer state dict: no 'param_groups' list (is this an optimizer's state_dict()?)");
        if (groups.Count != 1 || groups[0] is not PyDict group)
            throw new CheckpointFormatException($"optimizer state dict: expected one param group, found {groups.Count}; TorchSharp optimizers here take one");
        return group;
    }

    /// <summary>Every hyperparameter of a PyTorch param group into TorchSharp's options of the same optimizer (the table <see cref="Hyperparameters"/> reads back).</summary>
    private static void SetHyperparameters(OptimizerOptions options, PyDict group)
    {
        double D(string key) => Number(group, key);
        bool B(string key) => Flag(group, key);
        options.LearningRate = D("lr");
        switch (options)
        {
            case SGD.Options o:
                o.momentum = D("momentum"); o.dampening = D("dampening"); o.weight_decay = D("weight_decay"); o.nesterov = B("nesterov"); o.maximize = B("maximize");
                break;
            case Adam.Options o:
                (o.beta1, o.beta2) = Betas(group); o.eps = D("eps"); o.weight_decay = D("weight_decay"); o.amsgrad = B("amsgrad"); o.maximize = B("maximize");
                break;
            case AdamW.Options o:
                (o.beta1, o.beta2) = Betas(group); o.eps = D("eps"); o.weight_decay = D("weight_decay"); o.amsgrad = B("amsgrad"); o.maximize = B("maximize");
                break;
            case RMSProp.Options o:
                o.alpha = D("alpha"); o.eps = D("eps"); o.weight_decay = D("weight_decay"); o.momentum = D("momentum"); o.centered = B("centered"); o.maximize = B("maximize");
                break;
            case Adagrad.Options o:
                o.lr_decay = D("lr_decay"); o.weight_decay = D("weight_decay"); o.initial_accumulator_value = D("initial_accumulator_value"); o.eps = D("eps");
                break;
            case Adamax.Options o:
                (o.beta1, o.beta2) = Betas(group); o.eps = D("eps"); o.weight_decay = D("weight_decay");
                break;
            case NAdam.Options o:
                (o.beta1, o.beta2) = Betas(group); o.eps = D("eps"); o.weight_decay = D("weight_decay"); o.momentum_decay = D("momentum_decay");
                break;
            case RAdam.Options o:
                (o.beta1, o.beta2) = Betas(group); o.eps = D("eps"); o.weight_decay = D("weight_decay");
                break;
            default:
                throw new CheckpointFormatException($"no PyTorch mapping for {options.GetType().FullName}");
        }
    }

    private static double Number(PyDict group, string key) =>
        group.TryGetValue(key, out var v) ? ToDouble(v, $"param_groups[0].{key}") : throw new CheckpointFormatException($"param_groups[0] has no '{key}'");

    private static bool Flag(PyDict group, string key) =>
        group.TryGetValue(key, out var v) && v is bool b ? b : throw new CheckpointFormatException($"param_groups[0].{key}: expected a bool, found {Describe(v)}");

    private static (double, double) Betas(PyDict group) => (group.TryGetValue("betas", out var v) ? v : null) switch
    {
        PyTuple { Items.Count: 2 } t => (ToDouble(t.Items[0], "betas[0]"), ToDouble(t.Items[1], "betas[1]")),
        List<object?> { Count: 2 } l => (ToDouble(l[0], "betas[0]"), ToDouble(l[1], "betas[1]")),
        var other => throw new CheckpointFormatException($"param_groups[0].betas: expected a pair, found {Describe(other)}"),
    };

    /// <summary>Builds a TorchSharp optimizer of <paramref name="kind"/> with every hyperparameter taken from a PyTorch param group.</summary>
    public static optim.Optimizer Build(string kind, IEnumerable<Parameter> parameters, PyDict group)
    {
        double D(string key) => Number(group, key);
        bool B(string key) => Flag(group, key);
        (double, double) Betas() => PyTorchOptimizers.Betas(group);
        var p = parameters.ToList();
        switch (kind)
        {
            case "SGD":
                return optim.SGD(p, D("lr"), D("momentum"), D("dampening"), D("weight_decay"), B("nesterov"), B("maximize"));
            case "Adam":
            {
                var (b1, b2) = Betas();
                return optim.Adam(p, D("lr"), b1, b2, D("eps"), D("weight_decay"), B("amsgrad"), B("maximize"));
            }
            case "AdamW":
            {
                var (b1, b2) = Betas();
                return optim.AdamW(p, D("lr"), b1, b2, D("eps"), D("weight_decay"), B("amsgrad"), B("maximize"));
            }
            case "RMSprop":
                return optim.RMSProp(p, D("lr"), D("alpha"), D("eps"), D("weight_decay"), D("momentum"), B("centered"), B("maximize"));
            case "Adagrad":
                return optim.Adagrad(p, D("lr"), D("lr_decay"), D("weight_decay"), D("initial_accumulator_value"), D("eps"));
            case "Adamax":
            {
                var (b1, b2) = Betas();
                return optim.Adamax(p, D("lr"), b1, b2, D("eps"), D("weight_decay"));
            }
            case "NAdam":
            {
                var (b1, b2) = Betas();
                return optim.NAdam(p, D("lr"), b1, b2, D("eps"), D("weight_decay"), D("momentum_decay"));
            }
            case "RAdam":
            {
                var (b1, b2) = Betas();
                return optim.RAdam(p, D("lr"), b1, b2, D("eps"), D("weight_decay"));
            }
            default:
                throw new CheckpointFormatException($"optimizer type '{kind}' has no TorchSharp mapping here");
        }
    }

    /// <summary>The optimizer's hyperparameters under PyTorch's names (no 'params').</summary>
    public static PyDict Hyperparameters(optim.Optimizer optimizer)
    {
        var options = ((OptimizerHelper)optimizer).state_dict().Options[0];
        var g = new PyDict();
        g.Add("lr", options.LearningRate ?? double.NaN);
        switch (options)
        {
            case SGD.Options o:
                g.Add("momentum", o.momentum); g.Add("dampening", o.dampening); g.Add("weight_decay", o.weight_decay);
                g.Add("nesterov", o.nesterov); g.Add("maximize", o.maximize);
                break;
            case Adam.Options o:
                g.Add("betas", Pair(o.beta1, o.beta2)); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay);
                g.Add("amsgrad", o.amsgrad); g.Add("maximize", o.maximize);
                break;
            case AdamW.Options o:
                g.Add("betas", Pair(o.beta1, o.beta2)); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay);
                g.Add("amsgrad", o.amsgrad); g.Add("maximize", o.maximize);
                break;
            case RMSProp.Options o:
                g.Add("alpha", o.alpha); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay); g.Add("momentum", o.momentum);
                g.Add("centered", o.centered); g.Add("maximize", o.maximize);
                break;
            case Adagrad.Options o:
                g.Add("lr_decay", o.lr_decay); g.Add("weight_decay", o.weight_decay); g.Add("initial_accumulator_value", o.initial_accumulator_value);
                g.Add("eps", o.eps);
                break;
            case Adamax.Options o:
                g.Add("betas", Pair(o.beta1, o.beta2)); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay);
                break;
            case NAdam.Options o:
                g.Add("betas", Pair(o.beta1, o.beta2)); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay);
                g.Add("momentum_decay", o.momentum_decay);
                break;
            case RAdam.Options o:
                g.Add("betas", Pair(o.beta1, o.beta2)); g.Add("eps", o.eps); g.Add("weight_decay", o.weight_decay);
                break;
            default:
                throw new NotSupportedException($"no PyTorch mapping for {options.GetType().FullName}");
        }
        return g;
    }

    /// <summary>PyTorch's <c>optimizer.state_dict()</c> for a TorchSharp optimizer: what <see cref="Load"/> reads back, and torch.optim's <c>load_state_dict</c> too.</summary>
    public static PyDict StateDict(optim.Optimizer optimizer)
    {
        var sd = ((OptimizerHelper)optimizer).state_dict();
        var state = new PyDict();
        for (int i = 0; i < sd.State.Count; i++)
        {
            var entries = Entries(sd.State[i]);
            if (entries.Count > 0) state.Add((long)i, entries);
        }
        var group = Hyperparameters(optimizer);
        // Keys PyTorch writes that TorchSharp has no option for (foreach, capturable, differentiable, fused,
        // decoupled_weight_decay, a scheduler's initial_lr …) go back as the file had them, so that a
        // checkpoint loaded and saved again keeps every key torch.optim's load_state_dict reads.
        if (Loaded.TryGetValue(optimizer, out var original))
            foreach (var (key, value) in original)
                if (key is string k && k != "params" && !group.ContainsKey(k)) group.Add(k, value);
        group.Add("params", Enumerable.Range(0, sd.State.Count).Select(i => (object?)(long)i).ToList());
        var result = new PyDict();
        result.Add("state", state);
        result.Add("param_groups", new List<object?> { group });
        return result;
    }

    /// <summary>One parameter's state under PyTorch's names; tensors that were never created are left out, as PyTorch does.</summary>
    /// <param name="s">TorchSharp's state of one parameter.</param>
    /// <param name="asPyTorch">true: step and mu_product as 0-dim float32 tensors, as PyTorch saves them; false: as TorchSharp holds them (long, double).</param>
    public static PyDict Entries(OptimizerState s, bool asPyTorch = true)
    {
        var d = new PyDict();
        void T(string name, Tensor? t)
        {
            if (t is not null && !t.IsInvalid) d.Add(name, t);
        }
        void Step(long step)
        {
            // (object) casts: Tensor converts implicitly from long and double, which would win the conditional.
            if (step > 0) d.Add("step", asPyTorch ? (object)torch.tensor((float)step) : step);
        }
        switch (s)
        {
            case SGD.State x: T("momentum_buffer", x.momentum_buffer); break;
            case Adam.State x: Step(x.step); T("exp_avg", x.exp_avg); T("exp_avg_sq", x.exp_avg_sq); T("max_exp_avg_sq", x.max_exp_avg_sq); break;
            case AdamW.State x: Step(x.step); T("exp_avg", x.exp_avg); T("exp_avg_sq", x.exp_avg_sq); T("max_exp_avg_sq", x.max_exp_avg_sq); break;
            case RMSProp.State x: Step(x.step); T("square_avg", x.square_avg); T("momentum_buffer", x.momentum_buffer); T("grad_avg", x.grad_avg); break;
            case Adagrad.State x: Step(x.step); T("sum", x.sum); break;
            case Adamax.State x: Step(x.step); T("exp_avg", x.exp_avg); T("exp_inf", x.exp_inf); break;
            case NAdam.State x:
                Step(x.step);
                // float64, not PyTorch's float32: TorchSharp holds a double, and a round trip must not round it.
                if (x.step > 0) d.Add("mu_product", asPyTorch ? (object)torch.tensor(x.mu_product) : x.mu_product);
                T("exp_avg", x.exp_avg); T("exp_avg_sq", x.exp_avg_sq);
                break;
            case RAdam.State x: Step(x.step); T("exp_avg", x.exp_avg); T("exp_avg_sq", x.exp_avg_sq); break;
            default: throw new NotSupportedException($"no PyTorch mapping for {s.GetType().FullName}");
        }
        return d;
    }

    /// <summary>Loads PyTorch's per-parameter state into the TorchSharp optimizer's live state objects.</summary>
    public static void LoadState(optim.Optimizer optimizer, PyDict pytorchState)
    {
        var states = ((OptimizerHelper)optimizer).state_dict().State;
        foreach (var key in pytorchState.Keys)
        {
            int i = key is long l ? (int)l : throw new CheckpointFormatException($"optimizer state key {Describe(key)} is not an int");
            if (i < 0 || i >= states.Count) throw new CheckpointFormatException($"optimizer state[{i}]: the model has {states.Count} parameters");
            var e = pytorchState[key] as PyDict ?? throw new CheckpointFormatException($"optimizer state[{i}] is not a dict");
            Tensor Tn(string name) => e[name] as Tensor ?? throw new CheckpointFormatException($"optimizer state[{i}].{name}: expected a tensor, found {Describe(e[name])}");
            Tensor? Opt(string name) => e.TryGetValue(name, out var v) ? v as Tensor : null;
            long Step() => (long)ToDouble(e["step"], $"state[{i}].step");
            switch (states[i])
            {
                case SGD.State x: x.momentum_buffer = Opt("momentum_buffer")!; break;
                case Adam.State x: x.step = Step(); x.exp_avg = Tn("exp_avg"); x.exp_avg_sq = Tn("exp_avg_sq"); x.max_exp_avg_sq = Opt("max_exp_avg_sq")!; break;
                case AdamW.State x: x.step = Step(); x.exp_avg = Tn("exp_avg"); x.exp_avg_sq = Tn("exp_avg_sq"); x.max_exp_avg_sq = Opt("max_exp_avg_sq")!; break;
                case RMSProp.State x: x.step = Step(); x.square_avg = Tn("square_avg"); x.momentum_buffer = Opt("momentum_buffer")!; x.grad_avg = Opt("grad_avg")!; break;
                case Adagrad.State x: x.step = Step(); x.sum = Tn("sum"); break;
                case Adamax.State x: x.step = Step(); x.exp_avg = Tn("exp_avg"); x.exp_inf = Tn("exp_inf"); break;
                case NAdam.State x: x.step = Step(); x.mu_product = ToDouble(e["mu_product"], $"state[{i}].mu_product"); x.exp_avg = Tn("exp_avg"); x.exp_avg_sq = Tn("exp_avg_sq"); break;
                case RAdam.State x: x.step = Step(); x.exp_avg = Tn("exp_avg"); x.exp_avg_sq = Tn("exp_avg_sq"); break;
                default: throw new NotSupportedException($"no PyTorch mapping for {states[i].GetType().FullName}");
            }
        }
    }

    private static PyTuple Pair(double? a, double? b) => new([a, b]);

    /// <summary>A number from a checkpoint (an int, a float, a bool or a one-element tensor) as a double.</summary>
    internal static double ToDouble(object? v, string what) => v switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        Tensor t when t.numel() == 1 => t.to(ScalarType.Float64).item<double>(),
        _ => throw new CheckpointFormatException($"{what}: expected a number, found {Describe(v)}"),
    };

    /// <summary>A value in a message: a tensor by dtype and shape.</summary>
    internal static string Describe(object? v) => v switch
    {
        null => "None",
        Tensor t => $"tensor {t.dtype} [{string.Join(", ", t.shape)}]",
        _ => $"{v.GetType().Name} {v}",
    };
}
