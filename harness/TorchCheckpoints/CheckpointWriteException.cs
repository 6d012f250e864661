namespace TorchCheckpoints;

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
