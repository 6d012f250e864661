using System.Collections;
using System.Globalization;

namespace TorchCheckpoints;

/// <summary>
/// One value of what <c>torch.load</c> would return, as <see cref="TorchCheckpoint.Load(string, CheckpointLimits?)"/>
/// gives it: a dict, a list, a tuple, a tensor or a scalar, walked with indexers and read with typed
/// accessors, so that no cast is needed. A value of another kind than asked for, a missing key or an
/// index out of range raises <see cref="CheckpointFormatException"/> naming the file and where in it
/// (<c>$['optimizer_state_dict']['state'][0]['exp_avg']</c>).
/// </summary>
/// <example>
/// <code>
/// var checkpoint = TorchCheckpoint.Load("checkpoint.pt");
/// long epoch = checkpoint["epoch"].AsInt();
/// Tensor avg = checkpoint["optimizer_state_dict"]["state"][0]["exp_avg"].AsTensor();
/// foreach (var (name, tensor) in checkpoint["model_state_dict"].AsStateDict()) …
/// </code>
/// </example>
public sealed class CheckpointValue : IEnumerable<CheckpointValue>
{
    private readonly string? _file;

    internal CheckpointValue(object? value, string? file, string where = "$")
    {
        Value = value;
        _file = file;
        Where = where;
    }

    /// <summary>The value as the reader built it (<see cref="PyDict"/>, <c>List&lt;object?&gt;</c>, <see cref="PyTuple"/>, a tensor, <c>long</c>, <c>double</c>, <c>bool</c>, <c>string</c>, <c>byte[]</c> or null), for code that hands it on.</summary>
    public object? Value { get; }

    /// <summary>Where the value is in the file, as a path from its top level: <c>$</c>, <c>$['model_state_dict']</c>, <c>$['losses'][3]</c>.</summary>
    public string Where { get; }

    /// <summary>What the value is, in Python's terms.</summary>
    public CheckpointValueKind Kind => Value switch
    {
        null => CheckpointValueKind.None,
        bool => CheckpointValueKind.Bool,
        long => CheckpointValueKind.Int,
        double => CheckpointValueKind.Float,
        string => CheckpointValueKind.Str,
        byte[] => CheckpointValueKind.Bytes,
        PyDict => CheckpointValueKind.Dict,
        List<object?> => CheckpointValueKind.List,
        PyTuple => CheckpointValueKind.Tuple,
        _ => CheckpointValueKind.Tensor,
    };

    /// <summary>Whether the value is Python's None.</summary>
    public bool IsNone => Value is null;

    /// <summary>A dict's value at a str key: <c>checkpoint["model_state_dict"]</c>.</summary>
    public CheckpointValue this[string key] => Child(Dict(), key);

    /// <summary>A list's or tuple's item, or a dict's value at an int key (an optimizer's <c>state[0]</c>).</summary>
    public CheckpointValue this[int index] => Value switch
    {
        PyDict d => Child(d, (long)index),
        List<object?> l => ItemAt(l, index),
        PyTuple t => ItemAt(t.Items, index),
        _ => throw Wrong("a list, a tuple or a dict"),
    };

    /// <summary>Whether a dict holds <paramref name="key"/> (a str or an int).</summary>
    public bool ContainsKey(object key) => Dict().ContainsKey(key);

    /// <summary>A dict's keys, in the file's order (str or long).</summary>
    public IReadOnlyList<object> Keys => Dict().Keys.ToList();

    /// <summary>A dict's entries, in the file's order.</summary>
    public IEnumerable<KeyValuePair<object, CheckpointValue>> Entries => Dict().Select(kv => KeyValuePair.Create(kv.Key, new CheckpointValue(kv.Value, _file, $"{Where}[{PyDict.Describe(kv.Key)}]")));

    /// <summary>The number of entries of a dict, or items of a list or tuple.</summary>
    public int Count => Value switch
    {
        PyDict d => d.Count,
        List<object?> l => l.Count,
        PyTuple t => t.Count,
        _ => throw Wrong("a dict, a list or a tuple"),
    };

    /// <summary>The items, each with its place in the file.</summary>
    public IEnumerator<CheckpointValue> GetEnumerator()
    {
        IEnumerable<CheckpointValue> items = Value switch
        {
            PyDict => Entries.Select(e => e.Value),
            List<object?> l => l.Select((v, i) => new CheckpointValue(v, _file, $"{Where}[{i}]")),
            PyTuple t => t.Items.Select((v, i) => new CheckpointValue(v, _file, $"{Where}[{i}]")),
            _ => throw Wrong("a dict, a list or a tuple"),
        };
        return items.GetEnumerator();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A Python int (<c>epoch</c>).</summary>
    public long AsInt() => Value is long l ? l : throw Wrong("an int");

    /// <summary>A Python float, an int widened as Python would (<c>loss</c>, <c>lr</c>).</summary>
    public double AsFloat() => Value switch
    {
        double d => d,
        long l => l,
        _ => throw Wrong("a float"),
    };

    /// <summary>A bool.</summary>
    public bool AsBool() => Value is bool b ? b : throw Wrong("a bool");

    /// <summary>A str.</summary>
    public string AsString() => Value as string ?? throw Wrong("a str");

    /// <summary>bytes.</summary>
    public byte[] AsBytes() => Value as byte[] ?? throw Wrong("bytes");

    /// <summary>A TorchSharp tensor (the default backend's).</summary>
    public TorchSharp.torch.Tensor AsTensor() => As<TorchSharp.torch.Tensor>("a tensor");

    /// <summary>A tensor of the backend that read the file (<see cref="RawTensor"/> with <see cref="RawTensors"/>), or any other type the reader builds.</summary>
    public T As<T>() where T : class => As<T>(typeof(T).Name);

    /// <summary>A dict, with <see cref="PyDict"/>'s own typed accessors; what <c>module.load_state_dict</c> and <see cref="PyTorchOptimizers"/> take.</summary>
    public PyDict AsDict() => Dict();

    /// <summary>A dict of tensors as an ordered <c>string</c> → <c>Tensor</c> map (a state dict: <c>checkpoint["model_state_dict"]</c>).</summary>
    public StateDict AsStateDict()
    {
        try
        {
            return StateDict.From(Dict(), _file);
        }
        catch (CheckpointFormatException e) when (Where != "$")
        {
            throw new CheckpointFormatException(_file, null, $"{Where}: {e.Message}", e);
        }
    }

    /// <summary>A list's items as the reader built them.</summary>
    public IReadOnlyList<object?> AsList() => As<List<object?>>("a list");

    /// <summary>A tuple (Adam's <c>betas</c>).</summary>
    public PyTuple AsTuple() => As<PyTuple>("a tuple");

    /// <summary>Where the value is and what it is: <c>$['epoch']: an int</c>.</summary>
    public override string ToString() => $"{Where}: {PyDict.Kind(Value)}";

    private PyDict Dict() => Value as PyDict ?? throw Wrong("a dict");

    private T As<T>(string expected) where T : class => Value as T ?? throw Wrong(expected);

    private CheckpointValue Child(PyDict d, object key)
    {
        var at = $"{Where}[{PyDict.Describe(key)}]";
        if (d.TryGetValue(key, out var v)) return new CheckpointValue(v, _file, at);
        const int shown = 20;
        var keys = string.Join(", ", d.Keys.Take(shown).Select(PyDict.Describe)) + (d.Count > shown ? $", ... ({d.Count} in all)" : "");
        throw new CheckpointFormatException(_file, null, $"{at}: no such key; {Where}'s keys are: {(keys.Length == 0 ? "(none)" : keys)}");
    }

    private CheckpointValue ItemAt(IReadOnlyList<object?> items, int index) =>
        index >= 0 && index < items.Count
            ? new CheckpointValue(items[index], _file, $"{Where}[{index.ToString(CultureInfo.InvariantCulture)}]")
            : throw new CheckpointFormatException(_file, null, $"{Where}[{index}]: out of range; {Where} holds {items.Count} item(s)");

    private CheckpointFormatException Wrong(string expected) => new(_file, null, $"{Where} is {PyDict.Kind(Value)}, not {expected}");
}
