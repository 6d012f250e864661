using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp.Training;

/// <summary>
/// Fine-tuning after a load: does every parameter still train? Twin of python/torchconformance/worker/finetune.py.
/// PyTorch's state dicts carry tensors saved with requires_grad=False; a loader that takes the file's
/// flag instead of keeping the model's own leaves the parameters frozen, and a user's fine-tuning
/// then silently does nothing. After its other observations the consumer takes one plain SGD step on
/// the case's training loss and reports which parameters are frozen (requires_grad false) and which
/// trainable ones the step left unchanged. The orchestrator judges (problem <c>frozen_after_load</c>).
/// </summary>
public static class FineTune
{
    /// <summary>Large enough that any nonzero gradient moves a float32 parameter of the zoo by more than one ulp.</summary>
    public const double Lr = 0.1;

    /// <summary>A gradient at most this fraction of the step's largest is zero by the model's structure, up to rounding.</summary>
    public const double Negligible = 1e-5;

    /// <summary>
    /// <c>{"parameters", "frozen", "unchanged", "zero_grad"}</c>, names in named_parameters() order.
    /// unchanged: trainable, yet no gradient reached it or the step did not move it; zero_grad: its
    /// gradient is zero by the model's structure, at most <see cref="Negligible"/> of the largest (not judged).
    /// </summary>
    public static JsonObject Observe(nn.Module model, Func<Tensor> loss)
    {
        var named = model.named_parameters().ToList();
        var frozen = named.Where(p => !p.parameter.requires_grad).Select(p => p.name).ToList();
        var before = named.Select(p => p.parameter.detach().clone()).ToList();
        var trainable = named.Where(p => p.parameter.requires_grad).Select(p => p.parameter).ToList();
        model.train();
        if (trainable.Count > 0)
        {
            using var scope = NewDisposeScope();
            using var grad = enable_grad();
            var optimizer = optim.SGD(trainable, learningRate: Lr);
            optimizer.zero_grad();
            var value = loss();
            if (value.requires_grad) value.backward(); // nothing reaches the loss: every parameter stays, reported unchanged
            optimizer.step();
        }
        var unchanged = new List<string>();
        var zeroGrad = new List<string>();
        static double MaxAbs(Tensor g) => g.numel() == 0 ? 0 : g.detach().abs().max().to(ScalarType.Float64).item<double>();
        var largest = named.Select(p => p.parameter.grad).Where(g => g is not null).Select(g => MaxAbs(g!)).DefaultIfEmpty(0).Max();
        foreach (var ((name, p), b) in named.Zip(before))
        {
            if (!p.requires_grad) continue;
            var g = p.grad;
            // The model's own structure: e.g. a reverse LSTM's weight_hh_l1_reverse when only the last
            // time step is read (its hidden state is still zero there), or a bias a BatchNorm cancels
            // (norm_gelu's fc1.bias: rounding noise, ~1e-7 of the largest gradient, which moves the
            // float32 value on one machine and not on another). Reported, not judged.
            if (g is not null && MaxAbs(g) <= Negligible * largest) zeroGrad.Add(name);
            else if (g is null || p.detach().eq(b).all().item<bool>()) unchanged.Add(name);
        }
        foreach (var b in before) b.Dispose();
        return new JsonObject
        {
            ["parameters"] = Names(named.Select(p => p.name)),
            ["frozen"] = Names(frozen),
            ["unchanged"] = Names(unchanged),
            ["zero_grad"] = Names(zeroGrad),
        };
    }

    private static JsonArray Names(IEnumerable<string> names) => new(names.Select(n => (JsonNode)n).ToArray());
}
