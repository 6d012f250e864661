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
