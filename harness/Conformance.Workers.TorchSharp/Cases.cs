using Conformance.Workers.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>How to build, train, perturb and feed each case; twin of python/torchconformance/cases.py.</summary>
public sealed record Case(
    string Name,
    Func<nn.Module<Tensor, Tensor>> Build,
    Func<long, Tensor> Inputs,
    string Loss = "mean_square",
    long Classes = 0,
    double Lr = 0.01,
    double Momentum = 0.9,
    int TrainSteps = 2,
    IReadOnlyDictionary<string, Func<nn.Module<Tensor, Tensor>>>? Variants = null,
    Func<string?>? Lacks = null)
{
    /// <summary>Why this runtime cannot produce the case (a dtype its TorchSharp lacks), or null.</summary>
    public string? Unproducible() => Lacks?.Invoke();

    /// <summary>Salt 0 is the eval batch; 1.. the training batches.</summary>
    public Tensor EvalInput() => Inputs(0);

    public optim.Optimizer Optimizer(nn.Module model) => optim.SGD(model.parameters(), learningRate: Lr, momentum: Momentum);

    public Tensor TrainLoss(nn.Module<Tensor, Tensor> model, int step) => TrainLoss(model.call, step);

    /// <summary>The training loss through any forward (a C# twin's, or a loaded ScriptModule's).</summary>
    public Tensor TrainLoss(Func<Tensor, Tensor> forward, int step)
    {
        var output = forward(Inputs(step + 1));
        return Loss == "cross_entropy"
            ? nn.functional.cross_entropy(output, Data.Labels(output.shape[0], Classes, salt: step))
            : output.to(ScalarType.Float32).pow(2).mean();
    }
}

public static class Cases
{
    private static Func<long, Tensor> Floats(params long[] shape) => salt => Data.Pattern(shape, salt);

    private static Func<long, Tensor> Tokens(long vocab, params long[] shape) => salt => Data.Tokens(shape, vocab, salt);

    public static readonly IReadOnlyDictionary<string, Case> All = new Case[]
    {
        // The seed's LeNet and optimizer (SGD lr=0.001, momentum=0.9), trained with cross entropy.
        new("lenet", () => new TheModelClass(), Floats(4, 3, 32, 32), Loss: "cross_entropy", Classes: 10, Lr: 0.001, TrainSteps: 3,
            Variants: new Dictionary<string, Func<nn.Module<Tensor, Tensor>>>
            {
                ["strict_false"] = () => new LeNetWithHead("fc4", 10),
                ["shape_mismatch"] = () => new LeNetWithHead("fc3", 11),
            }),
        new("mlp_dropout", () => new MlpDropout(), Floats(8, 20)),
        new("cnn_batchnorm", () => new CnnBatchNorm(), Floats(4, 3, 16, 16)),
        new("norm_gelu", () => new NormGelu(), Floats(8, 16)),
        new("embedding_bilstm", () => new EmbeddingBiLstm(), Tokens(50, 4, 7)),
        new("gru", () => new GruNet(), Floats(4, 6, 10)),
        new("transformer_encoder", () => new TransformerEncoder(), Floats(5, 2, 16)),
        new("nested", () => new Nested(), Floats(4, 8)),
        new("tied_weights", () => new TiedWeights(), Tokens(30, 4, 6)),
        new("nonpersistent_buffer", () => new NonPersistentBuffer(), Floats(4, 6)),
        new("all_dtypes", () => new AllDtypes(), Floats(2, 4)),
        new("layouts", () => new Layouts(), Floats(2, 4)),
        // Producing needs every dtype; consuming builds the twin with those present and loads the file anyway.
        new("new_dtypes", () => new NewDtypes(), Floats(2, 4), Lacks: () => NewDtypes.Missing.Count == 0 ? null
            : $"TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} has no ScalarType for {string.Join(", ", NewDtypes.Missing)}"),
        // torchvision's resnet18 against TorchSharp's TorchVision resnet18, built from the seed, no download.
        new("resnet18", () => torchvision.models.resnet18(num_classes: 10), Floats(2, 3, 32, 32), TrainSteps: 1),
    }.ToDictionary(c => c.Name);

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
            if (b.dtype == ScalarType.Bool) b.logical_not_();
            // libtorch has no add kernel for these: add in float64, cast back (exact for small values).
            else if (NewDtypes.Present.Any(p => p.Type == b.dtype)) b.copy_((b.to(ScalarType.Float64) + 1).to(b.dtype));
            else b.add_(1);
        }
    }
}
