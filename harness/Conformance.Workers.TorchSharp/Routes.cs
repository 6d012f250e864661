using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>The routes the TorchSharp runtime can send and receive state dicts on.</summary>
public static class Routes
{
    /// <summary>Load modes of the TorchSharp consumer; PyBridge has one way to load.</summary>
    public static readonly string[] LoadModes = ["default"];

    public static void Save(string route, nn.Module model, string path)
    {
        switch (route)
        {
            case "pickle":
                model.save_py(path);
                break;
            default:
                throw new NotApplicableException($"route '{route}' is not implemented by the TorchSharp runtime");
        }
    }

    public static void Load(string route, string mode, nn.Module model, string path)
    {
        if (!LoadModes.Contains(mode))
            throw new NotApplicableException($"TorchSharp has no load mode '{mode}' (it has: {string.Join(", ", LoadModes)})");
        switch (route)
        {
            case "pickle":
                model.load_py(path, strict: true);
                break;
            default:
                throw new NotApplicableException($"route '{route}' is not implemented by the TorchSharp runtime");
        }
    }
}

/// <summary>The runtime lacks a capability the cell needs.</summary>
public sealed class NotApplicableException(string message) : Exception(message);
