using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Matrix;

/// <summary>How close a consumer's eval outputs must be to the producer's: |c - p| ≤ atol + rtol·|p|.</summary>
public sealed record Tolerance(double Atol, double Rtol)
{
    public override string ToString() => $"atol={Atol:g3}, rtol={Rtol:g3}";
}

/// <summary>What a strict=False warm start must report, on both sides.</summary>
public sealed record PartialLoad(IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);

/// <summary>What a load into a model of the wrong shape must say: the key and both shapes.</summary>
public sealed record ShapeMismatch(string Key, IReadOnlyList<long> FileShape, IReadOnlyList<long> ModelShape);

/// <summary>
/// A named case: a model twin, its tolerance, and what else it exercises.
/// <paramref name="TrainModeMatters"/>: the model has dropout or batch statistics, so train-mode
/// outputs must differ from eval-mode ones (proof that eval() took effect).
/// <paramref name="Golden"/>: its artifacts are small enough to keep as golden fixtures.
/// </summary>
public sealed record CaseSpec(
    string Name,
    string Description,
    Tolerance Tolerance,
    bool TrainModeMatters = false,
    PartialLoad? Partial = null,
    ShapeMismatch? Mismatch = null,
    bool Golden = true,
    string? Optimizer = null)
{
    /// <summary>A training-checkpoint case: the artifact is the seed's checkpoint dict for this optimizer.</summary>
    public bool IsCheckpoint => Optimizer is not null;
}

/// <summary>The declarative list of cases, routes and load modes the matrix is built from.</summary>
public static class Catalogue
{
    public const string Pickle = "pickle";
    public const string PickleLegacy = "pickle_legacy";
    public const string Safetensors = "safetensors";
    public const string TorchSharpNative = "torchsharp_native";
    /// <summary>The seed's training checkpoint, torch.save zip+pickle; read and written on the TorchSharp side by this project's codec.</summary>
    public const string Checkpoint = "checkpoint";

    public const string StrictFalse = "strict_false";
    public const string ShapeMismatchMode = "shape_mismatch";

    /// <summary>Full models as TorchScript: torch.jit.script or torch.jit.trace, then torch.jit.save / load.</summary>
    public const string TorchScriptScript = "torchscript_script";
    public const string TorchScriptTrace = "torchscript_trace";

    public static bool IsTorchScript(string route) => route is TorchScriptScript or TorchScriptTrace;

    /// <summary>Each route is a column family of the matrix (checkpoints have their own).</summary>
    public static readonly IReadOnlyList<string> Routes = [Pickle, PickleLegacy, Safetensors, TorchSharpNative, TorchScriptScript, TorchScriptTrace];

    /// <summary>torch.save(model): the whole module pickled with its Python class (the seed's "entire model").</summary>
    public const string PickledModel = "pickled_model";

    /// <summary>The routes a case's artifact crosses by.</summary>
    public static IReadOnlyList<string> RoutesOf(CaseSpec c) =>
        c.IsCheckpoint ? [Checkpoint] : c.Partial is not null ? [.. Routes, PickledModel] : Routes;

    // Resumed training runs 3 more optimizer steps on both sides: parameters may drift by a few
    // float32 ulps between libtorch builds, never by a changed update rule.
    private static readonly Tolerance Resume = new(Atol: 1e-5, Rtol: 1e-4);

    /// <summary>Optimizer names shared with python/torchconformance/checkpoints.py and the C# twin.</summary>
    public static readonly IReadOnlyList<string> Optimizers =
        ["sgd", "sgd_nesterov", "adam", "adam_amsgrad", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "radam",
         // Issue 9: L-BFGS (a closure; its state is a history of tensors in lists).
         "lbfgs"];

    /// <summary>
    /// Issue 9: LR schedulers in the checkpoint ('scheduler_state_dict'), each over one SGD; twins:
    /// checkpoints.SCHEDULERS, CheckpointCases.Schedulers. A case ckpt_&lt;name&gt; each.
    /// </summary>
    public static readonly IReadOnlyList<string> Schedulers = ["steplr", "cosine", "onecycle"];

    /// <summary>param_groups keys PyTorch's LR schedulers write into the optimizer's groups; TorchSharp keeps them in the scheduler.</summary>
    public static readonly IReadOnlySet<string> SchedulerGroupKeys = new HashSet<string> { "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum" };

    /// <summary>param_groups flags PyTorch keeps for its own kernels, which TorchSharp does not represent.</summary>
    public static readonly IReadOnlySet<string> ImplementationFlags = new HashSet<string> { "foreach", "capturable", "differentiable", "fused" };

    // Outputs come from two libtorch builds (different kernels): weights must be bit-identical,
    // outputs only close. float32 models get atol 1e-5 / rtol 1e-4.
    private static readonly Tolerance Float32 = new(Atol: 1e-5, Rtol: 1e-4);

    public static readonly IReadOnlyList<CaseSpec> Cases =
    [
        new("lenet", "The seed's TheModelClass after 3 SGD steps (lr=0.001, momentum=0.9)", Float32,
            Partial: new PartialLoad(["fc4.bias", "fc4.weight"], ["fc3.bias", "fc3.weight"]),
            Mismatch: new ShapeMismatch("fc3.weight", [10, 84], [11, 84])),
        new("mlp_dropout", "Linear, ReLU, Dropout(0.5), Linear", Float32, TrainModeMatters: true),
        new("cnn_batchnorm", "Conv2d, BatchNorm2d (running stats and num_batches_tracked moved by training), Linear", Float32, TrainModeMatters: true),
        new("norm_gelu", "Linear, BatchNorm1d, LayerNorm, GELU, Linear", Float32, TrainModeMatters: true),
        new("embedding_bilstm", "Embedding, 2-layer bidirectional LSTM, Linear", Float32),
        new("gru", "GRU, Linear", Float32),
        new("transformer_encoder", "TransformerEncoderLayer (self_attn.in_proj_weight), dropout 0.1", Float32, TrainModeMatters: true),
        new("nested", "Sequential, ModuleList and ModuleDict nesting", Float32),
        new("tied_weights", "Embedding and output projection sharing one Parameter", Float32),
        new("nonpersistent_buffer", "A persistent and a non-persistent buffer", Float32),
        new("all_dtypes", "A buffer of each of 11 dtypes, a 0-dim and a 0-size tensor", Float32),
        new("layouts", "A transposed (non-contiguous) parameter; two slices sharing one storage at an offset", Float32),
        // Issue 8: what a file with a dtype older runtimes lack does to them.
        new("new_dtypes", "A buffer of each dtype newer PyTorch has: uint16, uint32, uint64 (torch 2.3), float8_e4m3fn, float8_e5m2 (torch 2.1)", Float32),
        // 11M parameters and 20 BatchNorm layers: deeper accumulation of kernel differences. Its
        // ~45 MB artifacts are too large to keep as golden fixtures.
        new("resnet18", "torchvision resnet18 (num_classes=10) against TorchSharp's TorchVision resnet18", new Tolerance(Atol: 1e-4, Rtol: 1e-3),
            TrainModeMatters: true, Golden: false),
    ];

    /// <summary>The load modes a consumer of this kind offers on a route for a case; each is its own cell.</summary>
    public static IReadOnlyList<string> LoadModes(CaseSpec c, string consumerKind, string route)
    {
        if (IsTorchScript(route)) return ["default"];
        var modes = new List<string>();
        if (consumerKind == RuntimeKinds.PyTorch && route is Pickle or PickleLegacy or Checkpoint or PickledModel)
            modes.AddRange(["default", "weights_only", "mmap", "map_location_cpu"]);
        else
            modes.Add("default");
        if (c.Partial is not null) modes.Add(StrictFalse);
        if (c.Mismatch is not null) modes.Add(ShapeMismatchMode);
        return modes;
    }

    /// <summary>Every case: the state-dict zoo, then one training checkpoint per optimizer.</summary>
    public static IReadOnlyList<CaseSpec> All { get; } = Cases.Concat(Optimizers.Select(o =>
        new CaseSpec($"ckpt_{o}", $"The seed's checkpoint dict with {o}: 3 steps, save, resume 3 more", Resume, Optimizer: o)))
        .Concat(Schedulers.Select(s =>
            new CaseSpec($"ckpt_{s}", $"The seed's checkpoint dict with SGD and a {s} LR scheduler ('scheduler_state_dict'): 3 steps, save, resume 3 more", Resume, Optimizer: s)))
        .Append(new CaseSpec("ckpt_gan", "Several models in one file, GAN-style: {netG, netD, optimizerG (Adam), optimizerD (SGD), epoch}", Resume, Optimizer: "gan"))
        .ToList();

    /// <summary>
    /// How much wider a tolerance is when either side computed on a GPU: cuBLAS and cuDNN kernels (TF32
    /// off, stated by the worker) sum in other orders than the CPU's. Bytes stay exact; outputs and
    /// resumed parameters get 10x the case's CPU-to-CPU tolerance. Twin: judge.DEVICE_FACTOR.
    /// </summary>
    public const double DeviceFactor = 10.0;

    /// <summary>The case's tolerance for one device pair (<see cref="Runtime.DeviceOf"/> of producer and consumer).</summary>
    public static Tolerance ToleranceFor(CaseSpec c, string producerDevice, string consumerDevice) =>
        Runtime.IsAccelerator(producerDevice) || Runtime.IsAccelerator(consumerDevice)
            ? new Tolerance(c.Tolerance.Atol * DeviceFactor, c.Tolerance.Rtol * DeviceFactor)
            : c.Tolerance;

    /// <summary>The tolerance of a cell: its case's, for its producer's and consumer's devices.</summary>
    public static Tolerance ToleranceFor(CaseSpec c, Cell cell) => ToleranceFor(c, Runtime.DeviceOf(cell.Producer), Runtime.DeviceOf(cell.Consumer));

    public static CaseSpec Case(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"unknown case '{name}'");
}
