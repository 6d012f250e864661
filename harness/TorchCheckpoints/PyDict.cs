using System.Collections;
using System.Globalization;

namespace TorchCheckpoints;

// The value model that TorchCheckpoint reads and writes. A pickled Python value maps to:
//   None -> null, bool -> bool, int -> long, float -> double, str -> string, bytes -> byte[],
//   tuple -> PyTuple, list -> List<object?>, dict -> PyDict (Ordered=false),
//   collections.OrderedDict -> PyDict (Ordered=true), torch.Tensor / nn.Parameter -> the backend's tensor
//   (TorchSharp.torch.Tensor with TorchSharpTensors, RawTensor with RawTensors).

/// <summary>
/// An insertion-ordered Python dict. <see cref="Ordered"/> says whether it is (or is written as)
/// <c>collections.OrderedDict</c>, which is what <c>state_dict()</c> returns, or a plain dict.
/// Keys are strings or integers (optimizer state is keyed by parameter index); any C# integer key
/// is stored as <see cref="long"/>, so <c>dict[0]</c> and <c>dict[0L]</c> find the same entry.
/// </summary>
/// <remarks>Not thread-safe, like a Python dict.</remarks>
public sealed class PyDict : IEnumerable<KeyValuePair<object, object?>>
{
    private readonly List<KeyValuePair<object, object?>> _entries = new();
    private readonly Dictionary<object, int> _positions = new();

    /// <summary>An empty dict; <paramref name="ordered"/> makes it a <c>collections.OrderedDict</c>.</summary>
    public PyDict(bool ordered = false)
    {
        Ordered = ordered;
    }

    /// <summary>Whether it is a <c>collections.OrderedDict</c> (what <c>state_dict()</c> returns).</summary>
    public bool Ordered { get; }

    /// <summary>Entries in the dict.</summary>
    public int Count => _entries.Count;

    /// <summary>The keys, in insertion order.</summary>
    public IEnumerable<object> Keys => _entries.Select(e => e.Key);

    /// <summary>The checkpoint this dict was read from, so that a missing-key error can name it.</summary>
    internal string? SourcePath { get; init; }

    /// <summary>Gets a value (a missing key throws <see cref="CheckpointFormatException"/> naming it
    /// and the keys present) or sets one, replacing an existing key's value in place as Python does.</summary>
    public object? this[object key]
    {
        get => TryGetValue(key, out var value) ? value : throw MissingKey(key);
        set
        {
            var k = NormalizeKey(key);
            if (_positions.TryGetValue(k, out var position))
            {
                _entries[position] = new(k, value);
            }
            else
            {
                _positions.Add(k, _entries.Count);
                _entries.Add(new(k, value));
            }
        }
    }

    /// <summary>Adds a new key; a duplicate key throws <see cref="ArgumentException"/>.</summary>
    public void Add(object key, object? value)
    {
        var k = NormalizeKey(key);
        if (_positions.ContainsKey(k))
            throw new ArgumentException($"key {Describe(k)} is already present", nameof(key));
        _positions.Add(k, _entries.Count);
        _entries.Add(new(k, value));
    }

    /// <summary>The value of <paramref name="key"/>, if present.</summary>
    public bool TryGetValue(object key, out object? value)
    {
        if (TryNormalizeKey(key, out var k) && _positions.TryGetValue(k, out var position))
        {
            value = _entries[position].Value;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    public bool ContainsKey(object key) => TryNormalizeKey(key, out var k) && _positions.ContainsKey(k);

    /// <summary>The entries, in insertion order.</summary>
    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>How a key is shown in messages: strings quoted as Python would, integers bare.</summary>
    internal static string Describe(object key) =>
        key is string s ? $"'{s}'" : Convert.ToString(key, CultureInfo.InvariantCulture) ?? "None";

    private static object NormalizeKey(object key) =>
        TryNormalizeKey(key, out var k)
            ? k
            : throw new ArgumentException(
                $"a dict key must be a string or an integer, not {key?.GetType().Name ?? "null"}", nameof(key));

    private static bool TryNormalizeKey(object? key, out object normalized)
    {
        switch (key)
        {
            case string or long:
                normalized = key;
                return true;
            case int or short or sbyte or byte or ushort or uint:
                normalized = Convert.ToInt64(key, CultureInfo.InvariantCulture);
                return true;
            default:
                normalized = null!;
                return false;
        }
    }

    private CheckpointFormatException MissingKey(object key)
    {
        const int shown = 20;
        var keys = string.Join(", ", _entries.Take(shown).Select(e => Describe(e.Key)));
        if (_entries.Count > shown)
            keys += $", ... ({_entries.Count} in all)";
        var kind = Ordered ? "OrderedDict" : "dict";
        return new CheckpointFormatException(
            SourcePath, null, $"key {Describe(key)} is not in the {kind}; its keys are: {(keys.Length == 0 ? "(none)" : keys)}");
    }
}
