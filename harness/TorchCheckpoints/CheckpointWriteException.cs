namespace TorchCheckpoints;

/// <summary>
/// A save that failed. Nothing is left at the destination (no partial file, no temporary); the
/// message names the file and the cause, a full disk as ENOSPC.
/// </summary>
public sealed class CheckpointWriteException : IOException
{
    internal CheckpointWriteException(string path, string detail, Exception? innerException = null)
        // "could not save PATH: cause", not "PATH: ...": a report that strips a leading path (it shows the file
        // beside) still names the file the disk refused.
        : base($"could not save {path}: {detail}", innerException)
    {
        FilePath = path;
    }

    /// <summary>The destination that was not written.</summary>
    public string FilePath { get; }
}
