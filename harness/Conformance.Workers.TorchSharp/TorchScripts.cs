using Conformance.Protocol;
using TorchSharp;
using static TorchSharp.torch;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// TorchScript both ways. TorchSharp cannot script or trace a C# module, so its producer starts
/// from a ScriptModule a PyTorch runtime made (the orchestrator passes it as "source"), trains one
/// step through its parameters, and saves it with torch.jit.save.
/// </summary>
public static class TorchScripts
{
    public static readonly string[] Routes = ["torchscript_script", "torchscript_trace"];

    public static bool IsTorchScript(string route) => Routes.Contains(route);

    public static jit.ScriptModule<Tensor, Tensor> Load(string path) => jit.load<Tensor, Tensor>(path);

    /// <summary>Loads <paramref name="source"/>, takes one SGD step on the case's first training batch, and returns it.</summary>
    public static jit.ScriptModule<Tensor, Tensor> Retrain(string source, Case c)
    {
        var module = Load(source);
        module.train();
        var optimizer = optim.SGD(module.parameters(), learningRate: 0.01);
        using (var scope = NewDisposeScope())
        {
            optimizer.zero_grad();
            module.call(c.Inputs(1)).to(ScalarType.Float32).pow(2).mean().backward();
            optimizer.step();
        }
        return module;
    }

    /// <summary>
    /// torch.jit.save takes only a file name (its byte-array overload in TorchSharp 0.107 never fills
    /// the array): libtorch writes a temporary beside the path, whose size must be the one its zip
    /// end record declares; it is fsynced and renamed, or deleted.
    /// </summary>
    public static void Save(jit.ScriptModule module, string path) =>
        DurableFile.WriteVia(path, temp => jit.save(module, temp), DurableFile.ZipLength);
}
