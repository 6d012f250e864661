using System.Text;
using TorchSharp.PyBridge;
using static TorchSharp.torch;
using Conformance.Files;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// The routes the TorchSharp runtime sends and receives state dicts on. A state-dict route runs once per
/// .NET library (cases.json's route <c>libraries</c>; the request's <c>library</c>): PyBridge here,
/// TorchCheckpoints in <see cref="TorchCheckpointsRoutes"/>. The other routes are TorchSharp's own.
/// </summary>
public static class Routes
{
    public const string PyBridge = "pybridge";
    public const string TorchCheckpointsLibrary = "torchcheckpoints";

    /// <summary>The request's library: PyBridge when none is named (TorchSharp's own routes, `check`), else one of the two.</summary>
    public static string Library(System.Text.Json.Nodes.JsonObject args) => args["library"]?.GetValue<string>() switch
    {
        null or PyBridge => PyBridge,
        TorchCheckpointsLibrary => TorchCheckpointsLibrary,
        var other => throw new BadRequestException($"unknown library '{other}' (the TorchSharp worker has: {PyBridge}, {TorchCheckpointsLibrary})"),
    };

    public static void Save(string route, nn.Module model, string path, string library)
    {
        if (library == TorchCheckpointsLibrary) { TorchCheckpointsRoutes.Save(route, model, path); return; }
        Save(route, model, path);
    }

    public static void Load(string route, string mode, nn.Module model, string path, Dictionary<string, bool> loaded, string library)
    {
        if (!LoadModes.Contains(mode))
            throw new NotApplicableException($"TorchSharp has no load mode '{mode}' (it has: {string.Join(", ", LoadModes)})");
        if (library == TorchCheckpointsLibrary) { TorchCheckpointsRoutes.Load(route, mode, model, path, loaded); return; }
        Load(route, mode, model, path, loaded);
    }

    /// <summary>TorchSharp has one way to load each route; the variant modes load into another model.</summary>
    public static readonly string[] LoadModes = ["default", "strict_false", "shape_mismatch", LayoutRoutes.StripPrefix];

    private static void Save(string route, nn.Module model, string path)
    {
        if (LayoutRoutes.HfRoutes.Contains(route)) { LayoutRoutes.SaveHf(route, model, path); return; }
        if (LayoutRoutes.KeyPrefix(route) is not null) { LayoutRoutes.SavePrefixed(route, model, path); return; }
        switch (route)
        {
            // Each through its stream overload into DurableFile: a temporary beside the path, fsynced,
            // its size checked, then renamed; a failed save leaves nothing behind.
            case "pickle": DurableFile.Write(path, s => model.save_py(s, leaveOpen: true)); break;
            case "safetensors":
                try { DurableFile.Write(path, s => model.save_safetensors(s, leaveOpen: true)); }
                // The format has no code for quantized dtypes, as safetensors.torch answers on the PyTorch side. (C64,
                // which the format has and PyBridge lacks, stays a failure: ledger pybridge-safetensors-no-complex64.)
                catch (NotImplementedException e) when (e.Message is "Unrecognized data type listed: QInt8" or "Unrecognized data type listed: QUInt8" or "Unrecognized data type listed: QInt32")
                {
                    throw new NotApplicableException($"safetensors has no dtype for it: PyBridge says \"{e.Message}\"");
                }
                break;
            case "torchsharp_native":
                DurableFile.Write(path, s =>
                {
                    // Module.save(Stream) disposes the stream; its BinaryWriter overload leaves it to us.
                    using var writer = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
                    model.save(writer);
                    writer.Flush();
                });
                break;
            case "pickle_legacy":
                throw new NotApplicableException("TorchSharp.PyBridge writes only the zip format; the legacy (pre-1.6) pickle format has no writer");
            case "pickled_model":
                throw new NotApplicableException("TorchSharp has no Python class to pickle a whole model with; it saves state dicts (or TorchScript)");
            default: throw new NotApplicableException($"route '{route}' is not implemented by the TorchSharp runtime");
        }
    }

    /// <summary>Loads into <paramref name="model"/>; with strict false, fills <paramref name="loaded"/> (key -> matched).</summary>
    private static void Load(string route, string mode, nn.Module model, string path, Dictionary<string, bool> loaded)
    {
        if (!LoadModes.Contains(mode))
            throw new NotApplicableException($"TorchSharp has no load mode '{mode}' (it has: {string.Join(", ", LoadModes)})");
        bool strict = mode != "strict_false";
        if (LayoutRoutes.HfRoutes.Contains(route)) { LayoutRoutes.LoadHf(model, path, strict, loaded); return; }
        if (LayoutRoutes.KeyPrefix(route) is not null) { LayoutRoutes.LoadPrefixed(route, mode, model, path); return; }
        if (mode == LayoutRoutes.StripPrefix) throw new NotApplicableException($"route '{route}' has no load mode '{mode}'");
        switch (route)
        {
            case "pickle":
            case "pickle_legacy":
                model.load_py(path, strict: strict, loadedParameters: loaded);
                break;
            case "safetensors": model.load_safetensors(path, strict: strict, loadedParameters: loaded); break;
            case "pickled_model": throw new NotApplicableException(PickledModels.Diagnose(path));
            case "torchsharp_native": model.load(path, strict: strict, loadedParameters: loaded); break;
            default: throw new NotApplicableException($"route '{route}' is not implemented by the TorchSharp runtime");
        }
    }
}
