namespace TorchCheckpoints;

/// <summary>What a value read from a checkpoint is, in Python's terms.</summary>
public enum CheckpointValueKind
{
    /// <summary>Python's None.</summary>
    None,
    /// <summary>A bool.</summary>
    Bool,
    /// <summary>An int (<c>long</c>).</summary>
    Int,
    /// <summary>A float (<c>double</c>).</summary>
    Float,
    /// <summary>A str.</summary>
    Str,
    /// <summary>bytes.</summary>
    Bytes,
    /// <summary>A tensor (the backend's).</summary>
    Tensor,
    /// <summary>A dict or OrderedDict (<see cref="PyDict"/>).</summary>
    Dict,
    /// <summary>A list.</summary>
    List,
    /// <summary>A tuple (<see cref="PyTuple"/>).</summary>
    Tuple,
}
