using System.Collections;
using static TorchSharp.torch;

namespace TorchCheckpoints;

/// <summary>
/// A state dict as PyTorch's <c>model.state_dict()</c> gives it: an ordered map from names to tensors,
/// read from or written to a torch.save file. <c>StateDict.Load(path)</c> is <c>torch.load(path)</c> of
/// such a file; <c>module.load_pytorch(path)</c> loads one into a TorchSharp module.
/// </summary>
public sealed class StateDict : IReadOnlyDictionary<string, Tensor>
{
    private readonly List<KeyValuePair<string, Tensor>> _entries;
    private readonly Dictionary<string, Tensor> _byName;

    private StateDict(List<KeyValuePair<string, Tensor>> entries)
    {
        _entries = entries;
        _byName = entries.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// Reads a file whose top level is a state dict (names to tensors, as <c>torch.save(model.state_dict(), path)</c>
    /// writes it). A training checkpoint, or any other value, raises <see cref="CheckpointFormatException"/>
    /// saying what the file holds and how to reach its state dict.
    /// </summary>
    public static StateDict Load(string path, CheckpointLimits? limits = null) => From(TorchCheckpoint.LoadDict(path, limits), path);

    /// <summary>A module's parameters and buffers as PyTorch's <c>model.state_dict()</c> gives them: in PyTorch's order (each module's parameters, its buffers, then its children's).</summary>
    public static StateDict Of(nn.Module module) => new(StateDicts.InPyTorchOrder(module));

    /// <summary>A read dict as a state dict: every key a string, every value a tensor; otherwise the first offender is named.</summary>
    public static StateDict From(PyDict dict, string? path = null)
    {
        var entries = new List<KeyValuePair<string, Tensor>>(dict.Count);
        foreach (var (key, value) in dict)
        {
            if (key is not string name || value is not Tensor tensor)
            {
                var keys = string.Join(", ", dict.Keys.Take(8).Select(k => PyDict.Describe(k)));
                var hint = dict.ContainsKey("model_state_dict") ? "; it looks like a training checkpoint: TorchCheckpoint.LoadDict(path).Dict(\"model_state_dict\") is its model's state dict"
                    : dict.ContainsKey("state_dict") ? "; its \"state_dict\" entry may be the state dict: TorchCheckpoint.LoadDict(path).Dict(\"state_dict\")" : "";
                throw new CheckpointFormatException(path, null,
                    $"is not a state dict: {PyDict.Describe(key)} holds {PyDict.Kind(value)}, not a tensor (keys: {keys}{(dict.Count > 8 ? ", …" : "")}){hint}");
            }
            entries.Add(new(name, tensor));
        }
        return new StateDict(entries);
    }

    /// <summary>Writes it as <c>torch.save(state_dict, path)</c> does (an OrderedDict), durably: a failure leaves no file.</summary>
    public void Save(string path) => TorchCheckpoint.Save(path, ToPyDict());

    /// <summary>The same entries as the value model's OrderedDict, for a checkpoint dict of one's own.</summary>
    public PyDict ToPyDict()
    {
        var d = new PyDict(ordered: true);
        foreach (var (k, v) in _entries) d.Add(k, v);
        return d;
    }

    /// <summary>The tensor named <paramref name="key"/>; a missing name throws, listing the names there are.</summary>
    public Tensor this[string key] => _byName.TryGetValue(key, out var t) ? t
        : throw new KeyNotFoundException($"\"{key}\" is not in the state dict; its keys are: {string.Join(", ", _entries.Take(20).Select(e => $"\"{e.Key}\""))}");

    /// <summary>The names, in the file's order.</summary>
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    /// <summary>The tensors, in the file's order.</summary>
    public IEnumerable<Tensor> Values => _entries.Select(e => e.Value);

    /// <summary>How many tensors.</summary>
    public int Count => _entries.Count;

    /// <summary>Whether a tensor is named <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => _byName.ContainsKey(key);

    /// <summary>The tensor named <paramref name="key"/>, if there is one.</summary>
    public bool TryGetValue(string key, out Tensor value) => _byName.TryGetValue(key, out value!);

    /// <summary>The entries, in the file's order.</summary>
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
