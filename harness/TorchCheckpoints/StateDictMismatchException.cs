namespace TorchCheckpoints;

/// <summary>
/// A state dict that does not fit the module it is loaded into, with PyTorch's own message:
/// <c>Error(s) in loading state_dict for Net: Missing key(s) in state_dict: "fc.bias". …</c>.
/// The file itself may be sound, which is why this is apart from a damaged file's errors.
/// </summary>
public sealed class StateDictMismatchException(string module, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> errors)
    : CheckpointFormatException($"Error(s) in loading state_dict for {module}:\n\t{string.Join("\n\t", errors)}")
{
    /// <summary>The module's name, as PyTorch's message gives it.</summary>
    public string Module { get; } = module;

    /// <summary>Keys the module has and the state dict lacks.</summary>
    public IReadOnlyList<string> Missing { get; } = missing;

    /// <summary>Keys the state dict has and the module lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; } = unexpected;
}
