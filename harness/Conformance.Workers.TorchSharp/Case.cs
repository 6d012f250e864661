using System.Text.Json.Nodes;
using Conformance.Protocol;
using Conformance.Workers.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// How to build, train, perturb and feed each case; twin of python/torchconformance/worker/cases.py. What a
/// case is (input, loss, optimizer knobs, variants) comes from the catalogue; the models are Zoo.Builders.
/// </summary>
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
