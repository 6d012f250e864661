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
    bool Golden = true);

/// <summary>The declarative list of cases, routes and load modes the matrix is built from.</summary>
public static class Catalogue
{
    public const string Pickle = "pickle";
    public const string PickleLegacy = "pickle_legacy";
    public const string Safetensors = "safetensors";
    public const string TorchSharpNative = "torchsharp_native";

    public const string StrictFalse = "strict_false";
    public const string ShapeMismatchMode = "shape_mismatch";

    /// <summary>Each route is a column family of the matrix.</summary>
    public static readonly IReadOnlyList<string> Routes = [Pickle, PickleLegacy, Safetensors, TorchSharpNative];

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
        // 11M parameters and 20 BatchNorm layers: deeper accumulation of kernel differences. Its
        // ~45 MB artifacts are too large to keep as golden fixtures.
        new("resnet18", "torchvision resnet18 (num_classes=10) against TorchSharp's TorchVision resnet18", new Tolerance(Atol: 1e-4, Rtol: 1e-3),
            TrainModeMatters: true, Golden: false),
    ];

    /// <summary>The load modes a consumer of this kind offers on a route for a case; each is its own cell.</summary>
    public static IReadOnlyList<string> LoadModes(CaseSpec c, string consumerKind, string route)
    {
        var modes = new List<string>();
        if (consumerKind == RuntimeKinds.PyTorch && route is Pickle or PickleLegacy)
            modes.AddRange(["default", "weights_only", "mmap", "map_location_cpu"]);
        else
            modes.Add("default");
        if (c.Partial is not null) modes.Add(StrictFalse);
        if (c.Mismatch is not null) modes.Add(ShapeMismatchMode);
        return modes;
    }

    public static CaseSpec Case(string name) =>
        Cases.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"unknown case '{name}'");
}
