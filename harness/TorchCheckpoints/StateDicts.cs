using TorchSharp;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>State dicts between TorchSharp modules and PyTorch's <c>OrderedDict</c>, in TorchSharp's style.</summary>
public static class StateDicts
{
    /// <summary>The module's state dict as PyTorch's <c>model.state_dict()</c>: an OrderedDict of
    /// its parameters and buffers in PyTorch's order (<see cref="InPyTorchOrder"/>).</summary>
    public static PyDict state_dict_py(this nn.Module module)
    {
        var result = new PyDict(ordered: true);
        foreach (var (key, tensor) in InPyTorchOrder(module))
            result.Add(key, tensor);
        return result;
    }

    /// <summary>
    /// <c>module.state_dict()</c>'s entries in the order PyTorch's <c>state_dict()</c> gives them: each module's
    /// own parameters, then its own persistent buffers, then its children's, depth first. TorchSharp's own
    /// <c>state_dict()</c> lists a module's parameters before the buffers of the modules it holds (a
    /// BatchNorm's <c>running_mean</c> after the next layer's weight), so a file written in its order has
    /// PyTorch's keys in another order.
    /// </summary>
    internal static List<KeyValuePair<string, Tensor>> InPyTorchOrder(nn.Module module)
    {
        var entries = module.state_dict();
        var ordered = new List<KeyValuePair<string, Tensor>>(entries.Count);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        void Walk(nn.Module m, string prefix)
        {
            foreach (var (name, _) in m.named_parameters(recurse: false)) Place(prefix + name);
            foreach (var (name, _) in m.named_buffers(recurse: false)) Place(prefix + name);
            foreach (var (name, child) in m.named_children()) Walk(child, prefix + name + ".");
        }
        void Place(string key)
        {
            if (entries.TryGetValue(key, out var t) && placed.Add(key)) ordered.Add(new(key, t));
        }
        Walk(module, "");
        // Whatever the walk did not reach (a state dict a module overrides) keeps TorchSharp's order, after.
        foreach (var kv in entries) if (placed.Add(kv.Key)) ordered.Add(kv);
        return ordered;
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

    /// <summary><c>model.load_state_dict(sd, strict)</c> for a <see cref="StateDict"/> (<c>checkpoint["model_state_dict"].AsStateDict()</c>), as the <see cref="PyDict"/> overload.</summary>
    public static (IList<string> Missing, IList<string> Unexpected) load_state_dict(this nn.Module module, StateDict stateDict, bool strict = true) =>
        module.load_state_dict(stateDict.ToPyDict(), strict);

    /// <summary>
    /// <c>model.load_state_dict(torch.load(path), strict)</c>: reads a state dict file and copies it into
    /// the module; a mismatch raises <see cref="StateDictMismatchException"/> with PyTorch's message.
    /// </summary>
    public static (IList<string> Missing, IList<string> Unexpected) load_pytorch(this nn.Module module, string path, bool strict = true, CheckpointLimits? limits = null) =>
        module.load_state_dict(StateDict.Load(path, limits).ToPyDict(), strict);

    /// <summary><c>torch.save(model.state_dict(), path)</c>: a file every torch.load reads, written durably.</summary>
    public static void save_pytorch(this nn.Module module, string path) => StateDict.Of(module).Save(path);
}
