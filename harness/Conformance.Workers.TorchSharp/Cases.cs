using System.Text.Json.Nodes;
using Conformance.Protocol;
using Conformance.Workers.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp;

public static class Cases
{
    private static Func<long, Tensor> Floats(params long[] shape) => salt => Data.Pattern(shape, salt);

    private static Func<long, Tensor> Tokens(long vocab, params long[] shape) => salt => Data.Tokens(shape, vocab, salt);

    /// <summary>Why a builder cannot run on this runtime (a dtype its TorchSharp lacks), by builder name.</summary>
    private static readonly Dictionary<string, Func<string?>> Lacks = new()
    {
        // Producing needs every dtype; consuming builds the twin with those present and loads the file anyway.
        ["new_dtypes"] = () => NewDtypes.Missing.Count == 0 ? null
            : $"TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} has no ScalarType for {string.Join(", ", NewDtypes.Missing)}",
    };

    private static Func<nn.Module<Tensor, Tensor>> Builder(string name) =>
        Zoo.Builders.TryGetValue(name, out var b) ? b : throw new KeyNotFoundException($"the catalogue names model builder '{name}', which Zoo.Builders lacks");

    /// <summary>A case's <c>input</c> in the catalogue: {floats: shape} or {tokens: shape, vocab: N}.</summary>
    private static Func<long, Tensor> Inputs(JsonNode input) =>
        input["tokens"] is { } t
            ? Tokens(input["vocab"]!.GetValue<long>(), Longs(t))
            : Floats(Longs(input["floats"]!));

    private static long[] Longs(JsonNode n) => n.AsArray().Select(d => d!.GetValue<long>()).ToArray();

    /// <summary>One state-dict case of the catalogue (python/torchconformance/catalogue/cases.json), its defaults filled in.</summary>
    private static Case Parse(JsonNode c, JsonNode defaults)
    {
        JsonNode Field(string key) => c[key] ?? defaults[key] ?? throw new KeyNotFoundException($"case {c["name"]}: no '{key}' and no default");
        var name = c["name"]!.GetValue<string>();
        var model = c["model"]?.GetValue<string>() ?? name;
        return new Case(name, Builder(model), Inputs(c["input"]!),
            Loss: Field("loss").GetValue<string>(), Classes: Field("classes").GetValue<long>(), Lr: Field("lr").GetValue<double>(),
            Momentum: Field("momentum").GetValue<double>(), TrainSteps: Field("train_steps").GetValue<int>(),
            Variants: CatalogueFiles.Entries(c["variants"]).ToDictionary(v => v.Key, v => Builder(v.Value!.GetValue<string>())),
            Lacks: Lacks.GetValueOrDefault(model));
    }

    /// <summary>The catalogue's state-dict cases, in its order (training checkpoints: Training/CheckpointCases.cs).</summary>
    public static readonly IReadOnlyDictionary<string, Case> All = ReadAll(CatalogueFiles.Read("cases.json"));

    private static Dictionary<string, Case> ReadAll(JsonObject doc) =>
        doc["cases"]!.AsArray().Where(c => c!["optimizer"] is null).Select(c => Parse(c!, doc["defaults"]!)).ToDictionary(c => c.Name);

    public static Case Get(string name) =>
        All.TryGetValue(name, out var c)
            ? c
            : throw new KeyNotFoundException($"unknown case '{name}' (this runtime has: {string.Join(", ", All.Keys.Order())})");

    /// <summary>Builds the model from <paramref name="seed"/>, trains the case's steps on fixed data, perturbs buffers.</summary>
    public static nn.Module<Tensor, Tensor> Train(Case c, long seed)
    {
        torch.manual_seed(seed);
        var model = c.Build();
        var optimizer = c.Optimizer(model);
        model.train();
        for (int step = 0; step < c.TrainSteps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            c.TrainLoss(model, step).backward();
            optimizer.step();
        }
        Perturb(model);
        return model;
    }

    private static Tensor Requantize(Tensor like, Tensor values) => Observe.IsPerChannel(like)
        ? torch.quantize_per_channel(values, like.q_per_channel_scales(), like.q_per_channel_zero_points(), like.q_per_channel_axis(), like.dtype)
        : torch.quantize_per_tensor(values, like.q_scale(), like.q_zero_point(), like.dtype);

    /// <summary>
    /// Moves every persistent buffer off its initial value, so a consumer that fails to load one is
    /// caught. Training already moves parameters and BatchNorm statistics.
    /// </summary>
    public static void Perturb(nn.Module model)
    {
        var persistent = model.state_dict().Keys.ToHashSet();
        using var noGrad = no_grad();
        foreach (var (name, b) in model.named_buffers())
        {
            var leaf = name.Split('.')[^1];
            if (!persistent.Contains(name) || leaf is "running_mean" or "running_var" or "num_batches_tracked") continue;
            // No in-place arithmetic on quantized tensors: value + 1 requantized with the same parameters, copied in (same scheme).
            if (b.is_quantized()) b.copy_(Requantize(b, b.dequantize() + 1));
            else if (b.dtype == ScalarType.Bool) b.logical_not_();
            // libtorch has no add kernel for these: add in float64, cast back (exact for small values).
            else if (NewDtypes.Present.Any(p => p.Type == b.dtype)) b.copy_((b.to(ScalarType.Float64) + 1).to(b.dtype));
            else b.add_(1);
        }
    }
}
