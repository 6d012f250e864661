using System.Collections;
using System.Globalization;
using TorchCheckpoints;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// A loaded object's leaves with Python check's keys: dict entries, and the items of tuples and lists
/// that hold a tensor or a container, joined by '/'. Which values are tensors is the caller's (TorchSharp's
/// tensors for the readers, the codec's raw tensors for the --dotnet inventory); the walk is one.
/// </summary>
internal static class LoadedTree
{
    public static IEnumerable<(string Key, object? Leaf)> Leaves(object? value, Func<object?, bool> isTensor, string key = "")
    {
        string Join(object k) => key.Length == 0 ? Convert.ToString(k, CultureInfo.InvariantCulture)! : $"{key}/{k}";
        bool Holds(object? v) => isTensor(v) || v is PyDict or IDictionary or PyTuple || (v is IList && v is not string);
        if (isTensor(value))
        {
            yield return (key, value);
            yield break;
        }
        switch (value)
        {
            case PyDict d:
                foreach (var (k, v) in d)
                foreach (var leaf in Leaves(v, isTensor, Join(k))) yield return leaf;
                break;
            case IDictionary d:
                foreach (DictionaryEntry e in d)
                foreach (var leaf in Leaves(e.Value, isTensor, Join(e.Key))) yield return leaf;
                break;
            case PyTuple t when t.Items.Any(Holds):
                for (int i = 0; i < t.Count; i++)
                foreach (var leaf in Leaves(t[i], isTensor, Join(i))) yield return leaf;
                break;
            case IList l when value is not string && l.Cast<object?>().Any(Holds):
                for (int i = 0; i < l.Count; i++)
                foreach (var leaf in Leaves(l[i], isTensor, Join(i))) yield return leaf;
                break;
            default:
                yield return (key, value);
                break;
        }
    }
}
