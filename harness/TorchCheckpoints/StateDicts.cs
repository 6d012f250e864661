using TorchSharp;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>State dicts between TorchSharp modules and PyTorch's <c>OrderedDict</c>, in TorchSharp's style.</summary>
public static class StateDicts
{
    /// <summary>The module's state dict as PyTorch's <c>model.state_dict()</c>: an OrderedDict of
    /// its parameters and buffers, in TorchSharp's order (which is PyTorch's for twin modules).</summary>
    public static PyDict state_dict_py(this nn.Module module)
    {
        var result = new PyDict(ordered: true);
        foreach (var (key, tensor) in module.state_dict())
            result.Add(key, tensor);
        return result;
    }

    /// <summary>
    /// Copies a PyTorch state dict into the module, as <c>model.load_state_dict(sd, strict)</c>
    /// does: with <paramref name="strict"/>, missing or unexpected keys fail; a shape mismatch always
    /// fails; the message is PyTorch's (<c>Error(s) in loading state_dict for Net: Missing key(s) in
    /// state_dict: "fc.weight". ...</c>). Returns the missing and unexpected keys. Parameters keep
    /// their own <c>requires_grad</c>, as in PyTorch: a load never freezes a parameter.
    /// </summary>
    public static (IList<string> Missing, IList<string> Unexpected) load_state_dict(this nn.Module module, PyDict stateDict, bool strict = true)
    {
        var target = module.state_dict();
        var missing = target.Keys.Where(k => !stateDict.ContainsKey(k)).ToList();
        var unexpected = stateDict.Keys.Select(k => k as string ?? k.ToString() ?? "").Where(k => !target.ContainsKey(k)).ToList();
        var errors = new List<string>();
        if (strict && unexpected.Count > 0)
            errors.Add($"Unexpected key(s) in state_dict: {string.Join(", ", unexpected.Select(k => $"\"{k}\""))}. ");
        if (strict && missing.Count > 0)
            errors.Add($"Missing key(s) in state_dict: {string.Join(", ", missing.Select(k => $"\"{k}\""))}. ");
        foreach (var (key, tensor) in target)
        {
            if (!stateDict.TryGetValue(key, out var value))
                continue;
            if (value is not Tensor source)
                errors.Add($"While copying the parameter named \"{key}\", expected torch.Tensor or Tensor-like object from checkpoint but received {PyTorchOptimizers.Describe(value)}");
            else if (!source.shape.SequenceEqual(tensor.shape))
                errors.Add($"size mismatch for {key}: copying a param with shape torch.Size([{string.Join(", ", source.shape)}]) from checkpoint, the shape in current model is torch.Size([{string.Join(", ", tensor.shape)}]).");
        }
        if (errors.Count > 0)
            throw new StateDictMismatchException(module.GetName(), missing, unexpected, errors);
        using (no_grad())
        {
            foreach (var (key, tensor) in target)
            {
                if (stateDict.TryGetValue(key, out var value))
                    tensor.copy_((Tensor)value!);
            }
        }
        return (missing, unexpected);
    }

    /// <summary>
    /// <c>model.load_state_dict(torch.load(path), strict)</c>: reads a state dict file and copies it into
    /// the module; a mismatch raises <see cref="StateDictMismatchException"/> with PyTorch's message.
    /// </summary>
    public static (IList<string> Missing, IList<string> Unexpected) load_pytorch(this nn.Module module, string path, bool strict = true, CheckpointLimits? limits = null) =>
        module.load_state_dict(StateDict.Load(path, limits).ToPyDict(), strict);

    /// <summary><c>torch.save(model.state_dict(), path)</c>: a file every torch.load reads, written durably.</summary>
    public static void save_pytorch(this nn.Module module, string path) => StateDict.Of(module).Save(path);
}
