using System.IO.Compression;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>The bytes of one storage record, handed to <see cref="TensorBackend.ReadStorage"/>.</summary>
internal sealed class RecordReader
{
    private readonly ZipReader.EntryReader _entry;

    internal RecordReader(ZipReader.EntryReader entry)
    {
        _entry = entry;
    }

    /// <summary>The zip entry, <c>archive/data/0</c>.</summary>
    public string Entry => _entry.Name;

    /// <summary>The record's size in bytes.</summary>
    public long Length => _entry.Length;

    /// <summary>Bytes not read yet.</summary>
    public long Remaining => _entry.Remaining;

    /// <summary>Fills <paramref name="destination"/> with the next bytes (inflated when the entry is deflated).</summary>
    public void ReadExactly(Span<byte> destination) => _entry.ReadExactly(destination);

    /// <summary>Reads <paramref name="length"/> bytes to <paramref name="destination"/>: the whole
    /// record, read on several threads when it is large and stored, or the next bytes.</summary>
    public unsafe void ReadExactly(byte* destination, long length)
    {
        if (length == _entry.Remaining)
        {
            _entry.ReadWhole(destination);
            return;
        }
        for (long offset = 0; offset < length; offset += Segments.Chunk)
            _entry.ReadExactly(new Span<byte>(destination + offset, (int)Math.Min(Segments.Chunk, length - offset)));
    }
}
