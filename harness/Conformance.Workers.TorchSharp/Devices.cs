using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// The request's <c>device</c> (default cpu). A cuda device needs TorchSharp's CUDA backend (the
/// TorchSharp-cuda-* packages with libtorch-cuda): where it is absent the cell is not_applicable with
/// that reason. On CUDA, TF32 is switched off for cuBLAS and cuDNN before first use, as the Python worker
/// does, and hello states it. Twin of python/torchconformance/worker/device.py.
/// </summary>
public static class Devices
{
    public const string NoCudaBackend =
        "no TorchSharp CUDA backend in this worker (it is built against the CPU libtorch package; a CUDA machine builds it with TorchSharp-cuda-linux and runs the torchsharp-*-cuda cells)";

    public static Device Resolve(JsonObject args)
    {
        var name = args["device"]?.GetValue<string>() ?? "cpu";
        if (name == "cpu") return CPU;
        if (!name.StartsWith("cuda", StringComparison.Ordinal))
            throw new NotApplicableException($"the TorchSharp worker knows devices cpu and cuda[:N], not '{name}'");
        if (!cuda.is_available()) throw new NotApplicableException(NoCudaBackend);
        backends.cuda.matmul.allow_tf32 = false;
        backends.cudnn.allow_tf32 = false;
        return new Device(name);
    }

    /// <summary>What hello says about TF32 (null on a machine without CUDA).</summary>
    public static JsonNode? Tf32() => cuda.is_available()
        ? new JsonObject { ["cublas_allow_tf32"] = backends.cuda.matmul.allow_tf32, ["cudnn_allow_tf32"] = backends.cudnn.allow_tf32 }
        : null;
}
