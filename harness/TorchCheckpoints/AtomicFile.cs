using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Writes a file so that it is either complete or absent: into a temporary file beside the target,
/// flushed to the disk (fsync), its size on disk checked against what was written, then renamed
/// over the target. Any failure deletes the temporary and raises <see cref="CheckpointWriteException"/>
/// naming the file and the cause (ENOSPC by name for a full disk).
/// </summary>
public static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary file's handle; it returns the byte count it wrote.</summary>
    public static void Write(string path, Func<SafeFileHandle, long> write)
    {
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            long expected;
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None))
            {
                expected = write(stream.SafeFileHandle);
                stream.Flush(flushToDisk: true);
                long onDisk = RandomAccess.GetLength(stream.SafeFileHandle);
                if (onDisk != expected)
                    throw new CheckpointWriteException(path, $"{expected:N0} bytes were written but the file holds {onDisk:N0}");
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temporary);
            throw e switch
            {
                CheckpointWriteException or CheckpointFormatException => e,
                IOException or UnauthorizedAccessException => new CheckpointWriteException(path, Describe(e), e),
                _ => e,
            };
        }
    }

    /// <summary>An I/O failure in words, with the errno name for the ones a user can act on.</summary>
    public static string Describe(Exception e)
    {
        var message = e.Message;
        // .NET reports a full disk as IOException with HResult 28 (ENOSPC) or its message.
        if ((e.HResult & 0xFFFF) == 28 || message.Contains("No space left", StringComparison.OrdinalIgnoreCase))
            return $"No space left on device (ENOSPC): {message}";
        if ((e.HResult & 0xFFFF) == 122 || message.Contains("quota", StringComparison.OrdinalIgnoreCase))
            return $"Disk quota exceeded (EDQUOT): {message}";
        if (e is UnauthorizedAccessException)
            return $"Permission denied (EACCES): {message}";
        return message;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
