namespace TorchCheckpoints;

/// <summary>
/// The pickle asked for a Python global (a class or function) that is not on the reader's
/// allowlist. Raised when the global is named, before anything is built: the reader never runs code.
/// </summary>
public sealed class ForbiddenGlobalException : CheckpointFormatException
{
    internal ForbiddenGlobalException(string path, string entry, long offset, string module, string name, IEnumerable<string> allowed)
        : base(path, entry,
            $"{entry} asks for the global '{module}.{name}' (opcode at offset {offset}), which is not allowed; " +
            "nothing was executed: the reader only builds values. " +
            $"Allowed globals: {string.Join(", ", allowed)}")
    {
        Global = $"{module}.{name}";
    }

    /// <summary>The refused global, as <c>module.name</c>.</summary>
    public string Global { get; }
}
