using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>The bytes of one storage record to write, handed to <see cref="TensorBackend.WriteContiguous"/>.
/// Its place in the file is fixed, so records are written side by side on several threads.</summary>
internal sealed class RecordWriter
{
    private readonly SafeFileHandle _file;
    private readonly long _offset;
    private readonly long _size;
    private readonly Crc32 _crc = new();
    private uint? _wholeCrc;
    private long _written;

    internal RecordWriter(SafeFileHandle file, string entry, long offset, long size)
    {
        _file = file;
        Entry = entry;
        _offset = offset;
        _size = size;
    }

    /// <summary>The zip entry, <c>archive/data/0</c>.</summary>
    public string Entry { get; }

    /// <summary>Appends the next bytes.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (_wholeCrc is not null || _written + bytes.Length > _size)
            throw new InvalidOperationException($"more than the {_size} bytes of '{Entry}'");
        _crc.Append(bytes);
        RandomAccess.Write(_file, bytes, _offset + _written);
        _written += bytes.Length;
    }

    /// <summary>Appends <paramref name="length"/> bytes from <paramref name="source"/>: the whole
    /// record at once is written on several threads when it is large.</summary>
    public unsafe void Write(byte* source, long length)
    {
        if (_written == 0 && length == _size)
        {
            nint start = (nint)source;
            _wholeCrc = Segments.Run(length, (offset, size) =>
            {
                var crc = new Crc32();
                for (long done = 0; done < size; done += Segments.Chunk)
                {
                    var span = new ReadOnlySpan<byte>((byte*)start + offset + done, (int)Math.Min(Segments.Chunk, size - done));
                    crc.Append(span);
                    RandomAccess.Write(_file, span, _offset + offset + done);
                }
                return crc.GetCurrentHashAsUInt32();
            });
            _written = length;
            return;
        }
        for (long offset = 0; offset < length; offset += Segments.Chunk)
            Write(new ReadOnlySpan<byte>(source + offset, (int)Math.Min(Segments.Chunk, length - offset)));
    }

    /// <summary>The record's CRC-32, once all its bytes are written.</summary>
    internal uint Finish()
    {
        if (_written != _size)
            throw new InvalidOperationException($"{_written} bytes written to '{Entry}', {_size} expected");
        return _wholeCrc ?? _crc.GetCurrentHashAsUInt32();
    }
}
