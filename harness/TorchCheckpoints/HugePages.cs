using System.Runtime.InteropServices;

namespace TorchCheckpoints;

/// <summary>
/// Asks Linux for transparent huge pages over fresh tensor memory before a record is read into it.
/// The first touch of each 4 KiB page costs a fault and a zeroing; on a virtual machine that, not the
/// copy, bounds a load (this project's bench measures memcpy into fresh memory at a fraction of a
/// copy into warm memory). 2 MiB pages make 512 times fewer faults. Only advice: where the kernel
/// says no (THP off, not Linux), nothing changes.
/// </summary>
internal static partial class HugePages
{
    private const int MadvHugePage = 14;
    private const long HugePage = 2L << 20;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);

    private static bool _unavailable = !OperatingSystem.IsLinux();

    public static unsafe void Advise(byte* start, long length)
    {
        if (_unavailable || length < 2 * HugePage)
            return;
        long from = ((long)start + HugePage - 1) & ~(HugePage - 1);
        long to = ((long)start + length) & ~(HugePage - 1);
        if (to <= from)
            return;
        try
        {
            Madvise((nint)from, (nuint)(to - from), MadvHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }
}
