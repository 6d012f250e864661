using System.Collections;
using System.Globalization;

namespace TorchCheckpoints;

/// <summary>A Python tuple: kept apart from lists because torch distinguishes them (sizes, betas).</summary>
public sealed record PyTuple(IReadOnlyList<object?> Items)
{
    /// <summary>Convenience for literals such as <c>new PyTuple(0.9, 0.999)</c>.</summary>
    public PyTuple(params object?[] items) : this((IReadOnlyList<object?>)items)
    {
    }

    /// <summary>Items in the tuple.</summary>
    public int Count => Items.Count;

    /// <summary>The item at <paramref name="index"/>.</summary>
    public object? this[int index] => Items[index];
}
