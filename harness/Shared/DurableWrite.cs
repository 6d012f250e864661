// Compiled into two assemblies (TorchCheckpoints, the package, and Conformance.Protocol, the suite's
// own plumbing) so that one implementation of "a write that never lies" serves both without the
// package depending on the suite. Each wraps it with its own exception type.
using System.Runtime.InteropServices;

namespace Conformance.Shared;

/// <summary>
/// A file that is either complete or absent: written to a temporary beside its final name, flushed
/// and fsynced by the caller's writer, its size on disk checked after close against the bytes the
/// writer says it wrote, then renamed over the final name. On any failure the temporary is deleted
/// and an I/O failure becomes the caller's exception naming the file and the cause by errno
/// ("No space left on device (ENOSPC)"); any other exception (a serializer refusing a value) passes
/// through unchanged, after the same clean-up.
/// </summary>
internal static class DurableWrite
{
    /// <summary>Runs <paramref name="write"/> on a temporary path (it returns the bytes it wrote,
    /// having fsynced them) and commits it to <paramref name="path"/>.</summary>
    public static long Run<TFailure>(string path, Func<string, long> write, Func<string, string, Exception?, TFailure> fail)
        where TFailure : Exception
    {
        var temp = TempBeside(path);
        try
        {
            long written = write(temp);
            long onDisk = new FileInfo(temp).Length; // after close: what the file system reports for the name
            if (onDisk != written)
                throw fail(path, $"size check failed: the temporary {Path.GetFileName(temp)} has {onDisk} bytes on disk, {written} were written", null);
            File.Move(temp, path, overwrite: true);
            return written;
        }
        catch (Exception e)
        {
            try
            {
                if (File.Exists(temp))
                    File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                throw fail(path, $"{Cause(e)}; and the temporary {temp} could not be deleted: {Cause(cleanup)}", e);
            }
            if (e is not TFailure && e is IOException or UnauthorizedAccessException)
                throw fail(path, Cause(e), e);
            throw;
        }
    }

    /// <summary>".name.pid-random.tmp" in the same folder, so the rename is atomic and a leftover is recognisable.</summary>
    public static string TempBeside(string path)
    {
        var full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}.tmp");
    }

    public const int ENOSPC = 28;

    private static readonly Dictionary<int, (string Name, string Text)> Known = new()
    {
        [1] = ("EPERM", "Operation not permitted"),
        [2] = ("ENOENT", "No such file or directory"),
        [5] = ("EIO", "Input/output error"),
        [13] = ("EACCES", "Permission denied"),
        [17] = ("EEXIST", "File exists"),
        [20] = ("ENOTDIR", "Not a directory"),
        [21] = ("EISDIR", "Is a directory"),
        [24] = ("EMFILE", "Too many open files"),
        [27] = ("EFBIG", "File too large"),
        [ENOSPC] = ("ENOSPC", "No space left on device"),
        [30] = ("EROFS", "Read-only file system"),
        [36] = ("ENAMETOOLONG", "File name too long"),
        [122] = ("EDQUOT", "Disk quota exceeded"),
    };

    /// <summary>"No space left on device (ENOSPC)", or "errno N".</summary>
    public static string Describe(int errno) =>
        Known.TryGetValue(errno, out var k) ? $"{k.Text} ({k.Name})" : $"errno {errno}";

    /// <summary>The errno an exception carries, where .NET kept it (its HResult on Unix), or the disk-full wording it uses without one.</summary>
    public static int? Of(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is IOException && Known.ContainsKey(x.HResult)) return x.HResult;
            // Windows-style HRESULTs (ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL) and the preallocation message.
            if (x.HResult is unchecked((int)0x80070070) or unchecked((int)0x80070027)
                || x.Message.Contains("disk was full", StringComparison.OrdinalIgnoreCase)
                || x.Message.Contains("No space left on device", StringComparison.Ordinal)) return ENOSPC;
        }
        return null;
    }

    /// <summary>"No space left on device (ENOSPC): …the .NET message…", or the message alone when no errno is known.</summary>
    public static string Cause(Exception e)
    {
        var message = string.Join(" ", e.Message.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return Of(e) is { } errno ? $"{Describe(errno)}: {message}" : $"{e.GetType().Name}: {message}";
    }
}
