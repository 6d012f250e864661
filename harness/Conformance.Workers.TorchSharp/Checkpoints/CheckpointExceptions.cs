namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// A checkpoint that cannot be read or written as asked. The codec's messages start with the file
/// they concern and name the zip entry, dict key, storage, shape or dtype involved, so that a failed
/// conformance run can be diagnosed from the message alone. Callers checking a loaded value's
/// structure raise it with their own message.
/// </summary>
public class CheckpointFormatException : Exception
{
    public CheckpointFormatException(string message)
        : base(message)
    {
    }

    public CheckpointFormatException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The codec's form: "<paramref name="path"/>: <paramref name="detail"/>", or the detail
    /// alone for a value that came from no file.</summary>
    internal CheckpointFormatException(string? path, string detail)
        : base(path is null ? detail : $"{path}: {detail}")
    {
        FilePath = path;
    }

    /// <summary>The checkpoint file, when the codec raised this about one.</summary>
    public string? FilePath { get; }
}

/// <summary>
/// The pickle asked for a Python global (a class or function) that is not on the reader's
/// allowlist. Raised when the global is named, before anything is built: the reader never runs code.
/// </summary>
public sealed class ForbiddenGlobalException : CheckpointFormatException
{
    internal ForbiddenGlobalException(string path, string entry, long offset, string module, string name, IEnumerable<string> allowed)
        : base(path,
            $"{entry} asks for the global '{module}.{name}' (opcode at offset {offset}), which is not allowed; " +
            "nothing was executed: the reader only builds values. " +
            $"Allowed globals: {string.Join(", ", allowed)}")
    {
        Global = $"{module}.{name}";
    }

    /// <summary>The refused global, as <c>module.name</c>.</summary>
    public string Global { get; }
}
