namespace TorchCheckpoints;

/// <summary>
/// A checkpoint that cannot be read or written as asked. The message starts with the file and names
/// the zip entry, dict key, storage, shape or dtype involved, so that a failure is diagnosed from
/// the message alone; <see cref="FilePath"/> and <see cref="Entry"/> carry the same for code.
/// </summary>
public class CheckpointFormatException : Exception
{
    /// <summary>A message of the caller's own (checking a loaded value's structure, say).</summary>
    public CheckpointFormatException(string message)
        : base(message)
    {
    }

    /// <summary>A message of the caller's own, with the exception that caused it.</summary>
    public CheckpointFormatException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The codec's form: "<paramref name="path"/>: <paramref name="detail"/>", or the detail
    /// alone for a value that came from no file.</summary>
    public CheckpointFormatException(string? path, string? entry, string detail, Exception? innerException = null)
        : base(path is null ? detail : $"{path}: {detail}", innerException)
    {
        FilePath = path;
        Entry = entry;
    }

    /// <summary>The checkpoint file, when the codec raised this about one.</summary>
    public string? FilePath { get; }

    /// <summary>The zip entry (<c>archive/data/3</c>, <c>archive/data.pkl</c>) concerned, when there is one.</summary>
    public string? Entry { get; }
}

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

/// <summary>
/// The file asks for more than a <see cref="CheckpointLimits"/> setting allows (pickle depth, memo
/// size, zip entries, tensor bytes). Raised before the memory is allocated. Raise the setting if the
/// file is trusted and really that large.
/// </summary>
public sealed class CheckpointLimitException : CheckpointFormatException
{
    internal CheckpointLimitException(string path, string? entry, string limit, long allowed, long asked, string what)
        : base(path, entry,
            $"{what} needs {asked:N0}, over the limit {limit} = {allowed:N0} (CheckpointLimits.{limit}); " +
            "nothing that large was allocated. Raise the limit if the file is trusted")
    {
        Limit = limit;
        Allowed = allowed;
        Asked = asked;
    }

    /// <summary>The name of the <see cref="CheckpointLimits"/> property that was exceeded.</summary>
    public string Limit { get; }

    /// <summary>The limit's value.</summary>
    public long Allowed { get; }

    /// <summary>What the file asked for.</summary>
    public long Asked { get; }
}

/// <summary>
/// A save that failed. Nothing is left at the destination (no partial file, no temporary); the
/// message names the file and the cause, a full disk as ENOSPC.
/// </summary>
public sealed class CheckpointWriteException : IOException
{
    internal CheckpointWriteException(string path, string detail, Exception? innerException = null)
        : base($"{path}: could not be saved: {detail}", innerException)
    {
        FilePath = path;
    }

    /// <summary>The destination that was not written.</summary>
    public string FilePath { get; }
}

/// <summary>
/// TorchSharp's native library could not be loaded, so tensors cannot be made with
/// <see cref="TorchSharpTensors"/> (<see cref="RawTensors"/> needs no libtorch). The message says what
/// to reference and what the system must have; <see cref="Exception.InnerException"/> is TorchSharp's
/// own error.
/// </summary>
public sealed class TorchSharpUnavailableException : Exception
{
    /// <summary>The libtorch package TorchSharp 0.107 is built against, which the application references.</summary>
    public const string LibTorchPackage = "libtorch-cpu-linux-x64 2.10.0 (or TorchSharp-cpu 0.107.0; libtorch-cpu-win-x64 / -osx-arm64 elsewhere)";

    internal TorchSharpUnavailableException(Exception cause)
        : base("TorchSharp's native library (LibTorchSharp) could not be loaded, so TorchCheckpoints cannot make TorchSharp tensors. "
               + $"Reference {LibTorchPackage} in the application. On Linux, LibTorchSharp also needs a libstdc++ with GLIBCXX_3.4.32 "
               + "(GCC 13: Debian 13, Ubuntu 24.04 or newer; Debian 12 has 3.4.30), which TorchSharp's own message below may report as a missing package. "
               + "To read without libtorch, pass RawTensors.Instance. TorchSharp said: " + Innermost(cause).Message, cause)
    {
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
