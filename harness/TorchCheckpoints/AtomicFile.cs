using Conformance.Shared;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Writes a file so that it is either complete or absent: into a temporary file beside the target,
/// flushed to the disk (fsync; unless <c>durable</c> is false), its size on disk checked against what was written, then renamed
/// over the target. Any failure deletes the temporary and raises <see cref="CheckpointWriteException"/>
/// naming the file and the cause (ENOSPC by name for a full disk).
/// </summary>
internal static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary file's handle (positional writes, from
    /// any number of threads); it returns the byte count it wrote. <paramref name="durable"/>: false
    /// leaves out the fsync (still complete-or-absent to other processes, not across a power loss).</summary>
    public static void Write(string path, Func<SafeFileHandle, long> write, bool durable = true) =>
        DurableWrite.Run(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            long written = write(stream.SafeFileHandle);
            if (durable)
                stream.Flush(flushToDisk: true);
            return written;
        }, (p, cause, inner) => new CheckpointWriteException(p, cause, inner));

    /// <summary>An I/O failure in words, with the errno name for the ones a user can act on
    /// ("No space left on device (ENOSPC): ...").</summary>
    public static string Describe(Exception e) => DurableWrite.Cause(e);
}
