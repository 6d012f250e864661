using System.Buffers.Binary;
using Conformance.Shared;

namespace Conformance.Files;

/// <summary>Names an I/O failure's cause by its errno, e.g. "No space left on device (ENOSPC)".</summary>
public static class Errno
{
    public const int ENOSPC = DurableWrite.ENOSPC;

    public static string Describe(int errno) => DurableWrite.Describe(errno);

    /// <summary>The errno an exception carries, where .NET kept it (its HResult on Unix), or the disk-full wording it uses without one.</summary>
    public static int? Of(Exception e) => DurableWrite.Of(e);

    /// <summary>"No space left on device (ENOSPC): …the .NET message…", or the message alone when no errno is known.</summary>
    public static string Cause(Exception e) => DurableWrite.Cause(e);
}
