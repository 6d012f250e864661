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
        c.IsCheckpoint ? [Checkpoint]
        : RealLayouts.OnlyRoutes.TryGetValue(c.Name, out var only) ? only
        : [.. c.Partial is not null ? [.. Routes, PickledModel] : Routes, .. RealLayouts.ExtraRoutes.GetValueOrDefault(c.Name, [])];

    // Resumed training runs 3 more optimizer steps on both sides: parameters may drift by a few
    // float32 ulps between libtorch builds, never by a changed update rule.
    private static readonly Tolerance Resume = new(Atol: 1e-5, Rtol: 1e-4);

    /// <summary>Optimizer names shared with python/torchconformance/checkpoints.py and the C# twin.</summary>
    public static readonly IReadOnlyList<string> Optimizers =
        ["sgd", "sgd_nesterov", "adam", "adam_amsgrad", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "radam"];

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
        // Issue 9, part 3b: the shapes real checkpoints come in (RealLayouts below has their routes).
        new("storage_views", "Three buffers viewing one storage: contiguous at offset 0, a column slice (non-contiguous, offset 7), a transpose (offset 18)", Float32),
        new("storage_offsets", "Three contiguous buffers viewing one storage at offsets 0, 4 and 20, with gaps between them", Float32),
        new("quantized", "Quantized buffers: per-tensor qint8, per-channel qint8 (axis 0), per-tensor quint8", Float32),
        new("resnet18", "torchvision resnet18 (num_classes=10) against TorchSharp's TorchVision resnet18", new Tolerance(Atol: 1e-4, Rtol: 1e-3),
            TrainModeMatters: true, Golden: false),
    ];

    /// <summary>The load modes a consumer of this kind offers on a route for a case; each is its own cell.</summary>
    public static IReadOnlyList<string> LoadModes(CaseSpec c, string consumerKind, string route)
    {
        if (IsTorchScript(route) || RealLayouts.IsFolder(route)) return ["default"];
        if (RealLayouts.KeyPrefix(route) is not null) return ["default", RealLayouts.StripPrefix];
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

/// <summary>
/// Issue 9, part 3b: the shapes real checkpoints come in, as routes. Hugging Face's layouts (the
/// artifact is a folder, written as transformers' save_pretrained names it) and state dicts whose
/// keys carry a wrapper's prefix. Kept in one block so that it ports to a data file as it is.
/// </summary>
public static class RealLayouts
{
    /// <summary>pytorch_model-0000k-of-0000n.bin shards with pytorch_model.bin.index.json ({"metadata": {"total_size"}, "weight_map"}).</summary>
    public const string HfBinSharded = "hf_bin_sharded";
    /// <summary>One model.safetensors with __metadata__ {"format": "pt"}; tied weights stored once, the alias in the metadata (safetensors.torch.save_model).</summary>
    public const string HfSafetensors = "hf_safetensors";
    /// <summary>model-0000k-of-0000n.safetensors shards with model.safetensors.index.json.</summary>
    public const string HfSafetensorsSharded = "hf_safetensors_sharded";
    /// <summary>A pickled state dict whose keys start with "module." (saved from DataParallel / DistributedDataParallel).</summary>
    public const string PrefixModule = "prefix_module";
    /// <summary>A pickled state dict whose keys start with "_orig_mod." (saved from a torch.compile'd model).</summary>
    public const string PrefixOrigMod = "prefix_orig_mod";

    /// <summary>The load mode that strips the route's prefix before a strict load; "default" is the plain load, which must refuse the file.</summary>
    public const string StripPrefix = "strip_prefix";

    public static readonly IReadOnlyList<string> HfRoutes = [HfBinSharded, HfSafetensors, HfSafetensorsSharded];
    public static readonly IReadOnlyList<string> PrefixRoutes = [PrefixModule, PrefixOrigMod];

    /// <summary>Routes whose artifact is a folder.</summary>
    public static bool IsFolder(string route) => HfRoutes.Contains(route);

    /// <summary>The prefix a route's producer puts before every key, or null.</summary>
    public static string? KeyPrefix(string route) => route switch
    {
        PrefixModule => "module.",
        PrefixOrigMod => "_orig_mod.",
        _ => null,
    };

    /// <summary>Routes these cases cross by besides the usual ones.</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> ExtraRoutes = new Dictionary<string, IReadOnlyList<string>>
    {
        // lenet's ~250 KB shards are not kept as fixtures (make fixtures: --case for the small ones only).
        ["lenet"] = HfRoutes,
        // Prefixed nested keys: module.seq.0.weight, _orig_mod.heads.a.bias.
        ["nested"] = PrefixRoutes,
        ["tied_weights"] = HfRoutes,
        ["layouts"] = HfRoutes,
        ["storage_views"] = HfRoutes,
        ["storage_offsets"] = HfRoutes,
    };

    /// <summary>Cases that cross by these routes only. TorchScript of quantized buffers is not covered yet.</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> OnlyRoutes = new Dictionary<string, IReadOnlyList<string>>
    {
        ["quantized"] = [Catalogue.Pickle, Catalogue.PickleLegacy, Catalogue.Safetensors, Catalogue.TorchSharpNative],
    };
}
