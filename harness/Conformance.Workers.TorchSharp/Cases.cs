using Conformance.Workers.TorchSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>How to build, train and feed each case; twin of python/torchconformance/cases.py.</summary>
public sealed record Case(
    string Name,
    Func<nn.Module<Tensor, Tensor>> Build,
    Func<nn.Module, optim.Optimizer> Optimizer,
    long[] InputShape,
    long Classes,
    int TrainSteps)
{
    public Tensor EvalInput() => Data.Pattern(InputShape, salt: 0);

    public (Tensor X, Tensor Y) TrainBatch(int step) =>
        (Data.Pattern(InputShape, salt: step + 1), Data.Labels(InputShape[0], Classes, salt: step));
}

public static class Cases
{
    public static readonly IReadOnlyDictionary<string, Case> All = new Dictionary<string, Case>
    {
        ["lenet"] = new(
            Name: "lenet",
            Build: () => new TheModelClass(),
            // The seed's optimizer, hyperparameters stated explicitly.
            Optimizer: m => optim.SGD(m.parameters(), learningRate: 0.001, momentum: 0.9),
            InputShape: [4, 3, 32, 32],
            Classes: 10,
            TrainSteps: 3),
    };

    public static Case Get(string name) =>
        All.TryGetValue(name, out var c)
            ? c
            : throw new KeyNotFoundException($"unknown case '{name}' (this runtime has: {string.Join(", ", All.Keys.Order())})");

    /// <summary>Builds the model from <paramref name="seed"/> and trains the case's steps on fixed data.</summary>
    public static (nn.Module<Tensor, Tensor> Model, optim.Optimizer Optimizer) Train(Case c, long seed)
    {
        torch.manual_seed(seed);
        var model = c.Build();
        var optimizer = c.Optimizer(model);
        var lossFn = nn.CrossEntropyLoss();
        model.train();
        for (int step = 0; step < c.TrainSteps; step++)
        {
            using var scope = NewDisposeScope();
            var (x, y) = c.TrainBatch(step);
            optimizer.zero_grad();
            var loss = lossFn.call(model.call(x), y);
            loss.backward();
            optimizer.step();
        }
        return (model, optimizer);
    }
}
