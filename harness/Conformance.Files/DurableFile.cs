using System.Buffers.Binary;
using Conformance.Shared;

namespace Conformance.Files;

/// <summary>
/// Writes that never lie: every artifact or report goes to a temporary file beside its final name,
/// is flushed and fsynced, its size on disk is checked against what was written, and only then is it
/// renamed onto the final path. On any failure the temporary is deleted and a
/// <see cref="SaveFailedException"/> names the file and the cause; a writer's own non-I/O exception
/// (a serializer refusing a tensor) passes through unchanged, after the same clean-up.
/// One helper for the TorchSharp worker's saves and the orchestrator's files.
/// </summary>
public static class DurableFile
{
    /// <summary>Streams <paramref name="write"/> into <paramref name="path"/>; returns the bytes written. The stream is seekable; do not dispose it.</summary>
    public static long Write(string path, Action<Stream> write) =>
        DurableWrite.Run(path, temp =>
        {
            using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16);
            var counting = new CountingStream(file);
            write(counting);
            counting.Flush();
            file.Flush(flushToDisk: true);
            return counting.End;
        }, (p, cause, inner) => new SaveFailedException(p, cause, inner));

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> durably.</summary>
    public static long Write(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        return Write(path, s => s.Write(copy));
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (no byte-order mark) durably.</summary>
    public static long WriteText(string path, string text) => Write(path, new System.Text.UTF8Encoding(false).GetBytes(text));

    /// <summary>
    /// For a writer that takes only a file name (torch.jit.save). It writes into a file in memory
    /// (Linux memfd_create, named /proc/self/fd/N), never onto the disk: libtorch's writer meeting a
    /// full disk throws from a destructor and aborts the whole process, which no catch can turn into an
    /// answer. What it wrote must be as long as <paramref name="declaredLength"/> says (what the file
    /// itself declares, e.g. <see cref="ZipLength"/>); it is then streamed through
    /// <see cref="Write(string, Action{Stream})"/> (temporary, fsync, size check, rename).
    /// Elsewhere than Linux the memory file is a temporary beside the path.
    /// </summary>
    public static long WriteVia(string path, Action<string> write, Func<string, long> declaredLength)
    {
        using var memory = MemoryFile.Create(path);
        write(memory.Path);
        long declared;
        try
        {
            declared = declaredLength(memory.Path);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new SaveFailedException(path, $"the writer left an incomplete file: {e.Message}", e);
        }
        using var written = memory.OpenRead();
        if (written.Length != declared)
            throw new SaveFailedException(path, $"size check failed: the writer wrote {written.Length} bytes, the file declares {declared}");
        return Write(path, s => written.CopyTo(s));
    }

    /// <summary>The temporaries <see cref="Write(string, Action{Stream})"/> makes beside <paramref name="path"/>, left behind only by a process that died while saving.</summary>
    public static IReadOnlyList<string> Leftovers(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        return Directory.Exists(dir) ? Directory.GetFiles(dir, $".{Path.GetFileName(full)}.*.tmp") : [];
    }

    /// <summary>A file in memory with a path a native writer can open.</summary>
    private sealed class MemoryFile : IDisposable
    {
        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        private static extern int memfd_create(string name, uint flags);

        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;
        public string Path { get; }

        private MemoryFile(string path, Microsoft.Win32.SafeHandles.SafeFileHandle? handle) { Path = path; _handle = handle; }

        public static MemoryFile Create(string target)
        {
            if (OperatingSystem.IsLinux())
            {
                int fd = memfd_create(System.IO.Path.GetFileName(target), 1 /* MFD_CLOEXEC */);
                if (fd < 0) throw new SaveFailedException(target, $"memfd_create failed: {Errno.Describe(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
                return new MemoryFile($"/proc/self/fd/{fd}", new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true));
            }
            return new MemoryFile(TempBeside(target), null);
        }

        public Stream OpenRead() => new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);

        public void Dispose()
        {
            if (_handle is not null) _handle.Dispose();
            else if (File.Exists(Path)) File.Delete(Path);
        }
    }

    /// <summary>
    /// The length a zip archive (PyTorch's and TorchScript's container) says it has: the end of its
    /// end-of-central-directory record, after checking that the central directory ends where that
    /// record (or the zip64 one) begins. A truncated archive throws <see cref="InvalidDataException"/>.
    /// </summary>
    public static long ZipLength(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long length = f.Length;
        int tail = (int)Math.Min(length, 22 + 0xFFFF);
        var buf = new byte[tail];
        f.Seek(length - tail, SeekOrigin.Begin);
        f.ReadExactly(buf);
        for (int i = tail - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(i)) != 0x06054b50) continue;
            long eocd = length - tail + i;
            long end = eocd + 22 + BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(i + 20));
            long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(i + 12));
            long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(i + 16));
            long cdEnd = eocd;
            var loc = new byte[20];
            if (eocd >= 20)
            {
                f.Seek(eocd - 20, SeekOrigin.Begin);
                f.ReadExactly(loc);
            }
            bool zip64 = eocd >= 20 && BinaryPrimitives.ReadUInt32LittleEndian(loc) == 0x07064b50;
            if (!zip64 && (cdOffset == 0xFFFFFFFF || cdSize == 0xFFFFFFFF))
                throw new InvalidDataException($"{path}: zip64 locator missing");
            if (zip64)
            {
                // zip64 (libtorch writes it for every archive): the locator just before points at the zip64 end record.
                long z64 = (long)BinaryPrimitives.ReadUInt64LittleEndian(loc.AsSpan(8));
                var rec = new byte[56];
                if (z64 < 0 || z64 + 56 > length) throw new InvalidDataException($"{path}: zip64 end record at {z64} lies beyond the file's {length} bytes");
                f.Seek(z64, SeekOrigin.Begin);
                f.ReadExactly(rec);
                if (BinaryPrimitives.ReadUInt32LittleEndian(rec) != 0x06064b50) throw new InvalidDataException($"{path}: no zip64 end record at {z64}");
                cdSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(40));
                cdOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(48));
                cdEnd = z64;
            }
            if (cdOffset + cdSize != cdEnd)
                throw new InvalidDataException($"{path}: the central directory ({cdSize} bytes at {cdOffset}) does not end where the end record begins ({cdEnd})");
            return end;
        }
        throw new InvalidDataException($"{path}: no zip end-of-central-directory record in its {length} bytes (truncated)");
    }

    /// <summary>".name.pid-random.tmp" in the same folder, so the rename is atomic and a leftover is recognisable.</summary>
    public static string TempBeside(string path) => DurableWrite.TempBeside(path);

    /// <summary>Counts where writes end, independently of the file system: the bytes a save claims to have written.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long End { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) { inner.SetLength(value); End = value; }
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Mark(); }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Mark(); }
        public override void WriteByte(byte value) { inner.WriteByte(value); Mark(); }
        private void Mark() => End = Math.Max(End, inner.Position);
        // The file belongs to DurableFile: a writer that disposes its stream must not close it.
        protected override void Dispose(bool disposing) { }
    }
}
