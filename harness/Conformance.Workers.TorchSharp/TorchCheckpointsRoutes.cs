using TorchCheckpoints;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// The state-dict routes read and written with this project's TorchCheckpoints library, as a TorchSharp
/// user calls it (its README's examples): <c>model.save_pytorch</c> / <c>model.load_pytorch</c>,
/// <c>StateDict.Load</c>, <c>Safetensors</c>, <c>HuggingFace</c>. The <c>torchcheckpoints</c> library of the
/// matrix (<c>torchsharp-0.107+torchcheckpoints</c>); <see cref="Routes"/> has PyBridge's.
/// </summary>
public static class TorchCheckpointsRoutes
{
    public static void Save(string route, nn.Module model, string path)
    {
        if (LayoutRoutes.HfRoutes.Contains(route)) { SaveHf(route, model, path); return; }
        if (LayoutRoutes.KeyPrefix(route) is { } prefix)
        {
            var prefixed = new PyDict(ordered: true);
            foreach (var (key, t) in model.state_dict()) prefixed.Add(prefix.Prefix + key, t);
            TorchCheckpoint.Save(path, prefixed);
            return;
        }
        switch (route)
        {
            case "pickle": model.save_pytorch(path); break;
            case "safetensors":
                // The route is safetensors.torch.save_file's, which refuses tensors sharing memory; save_model's
                // aliases are hf_safetensors' (and Safetensors.Save's, which a user calls for tied weights).
                if (Observe.Aliases(model.state_dict()).Count > 0)
                    throw new NotApplicableException("the safetensors route is save_file's, which cannot store tensors that share memory (tied weights): hf_safetensors carries them (save_model's aliases)");
                try { Safetensors.Save(path, StateDict.Of(model)); }
                // The format has no code for quantized dtypes, as safetensors.torch answers on the PyTorch side.
                catch (CheckpointFormatException e) when (e.Message.Contains("which safetensors has no dtype", StringComparison.Ordinal))
                {
                    throw new NotApplicableException($"safetensors has no dtype for it: TorchCheckpoints says \"{e.Message}\"");
                }
                break;
            case "pickle_legacy":
                throw new NotApplicableException("TorchCheckpoints writes only the zip format, as torch.save has since 1.6; it reads the legacy format");
            default: throw new NotApplicableException($"route '{route}' has no TorchCheckpoints writer");
        }
    }

    /// <summary>Loads into <paramref name="model"/>: strict unless <paramref name="mode"/> is strict_false; fills <paramref name="loaded"/> (file key -> matched).</summary>
    public static void Load(string route, string mode, nn.Module model, string path, Dictionary<string, bool> loaded)
    {
        bool strict = mode != "strict_false";
        StateDict file;
        if (LayoutRoutes.HfRoutes.Contains(route)) file = HuggingFace.LoadFolder(path);
        else if (LayoutRoutes.KeyPrefix(route) is { } prefix)
        {
            file = StateDict.Load(path);
            if (mode == LayoutRoutes.StripPrefix)
            {
                var stripped = new PyDict(ordered: true);
                foreach (var (key, t) in file) stripped.Add(key.StartsWith(prefix.Prefix, StringComparison.Ordinal) ? key[prefix.Prefix.Length..] : key, t);
                file = StateDict.From(stripped, path);
            }
            else
            {
                try { Into(model, file, strict: true, loaded); }
                catch (StateDictMismatchException e) when (LayoutRoutes.PrefixDiagnosis(file.Keys.ToList(), model.state_dict().Keys.ToList()) is { Length: > 0 } hint)
                {
                    throw new InvalidOperationException($"{hint}: {e.GetType().Name}: {e.Message}", e);
                }
                return;
            }
        }
        else if (mode == LayoutRoutes.StripPrefix) throw new NotApplicableException($"route '{route}' has no load mode '{mode}'");
        else file = route switch
        {
            "pickle" or "pickle_legacy" => StateDict.Load(path),
            "safetensors" => Safetensors.Load(path),
            _ => throw new NotApplicableException($"route '{route}' has no TorchCheckpoints reader"),
        };
        Into(model, file, strict, loaded);
    }

    /// <summary><c>model.load_state_dict(sd, strict)</c>: PyTorch's wording on a mismatch; <paramref name="loaded"/> says which file keys the model took.</summary>
    private static void Into(nn.Module model, StateDict file, bool strict, Dictionary<string, bool> loaded)
    {
        var (_, unexpected) = model.load_state_dict(file.ToPyDict(), strict);
        var refused = unexpected.ToHashSet(StringComparer.Ordinal);
        foreach (var key in file.Keys) loaded[key] = !refused.Contains(key);
    }

    /// <summary>A Hugging Face folder as transformers' save_pretrained writes it (the same split as the PyTorch side's layouts.py).</summary>
    private static void SaveHf(string route, nn.Module model, string folder)
    {
        var sd = StateDict.Of(model);
        HuggingFace.SaveFolder(folder, sd, safetensors: route != LayoutRoutes.HfBinSharded,
            maxShardBytes: route == LayoutRoutes.HfSafetensors ? null : HuggingFace.HalfTheModel(sd));
    }
}
