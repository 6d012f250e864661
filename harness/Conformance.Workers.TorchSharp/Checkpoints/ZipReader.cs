using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// Reads the zip container of a torch.save file. Hand-parsed rather than System.IO.Compression's
/// ZipArchive so that records are read at known offsets straight into tensor memory (no whole-file
/// buffer, no per-entry stream copies), every failure can name the file and entry, and every record
/// is CRC-checked. Handles stored entries (torch.save), deflated ones (TorchSharp.PyBridge) and zip64
/// (torch.save of checkpoints over 4 GiB).
/// </summary>
internal sealed class ZipReader : IDisposable
{
    /// <summary>A central-directory record: where an entry is and what it should contain.</summary>
    internal sealed record Entry(string Name, int Method, int Flags, uint Crc, long CompressedSize, long Size, long HeaderOffset);

    private const uint LocalHeaderSignature = 0x04034b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint EndSignature = 0x06054b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const int LocalHeaderSize = 30;
    private const int CentralHeaderSize = 46;
    private const int EndSize = 22;
    private const int Zip64EndSize = 56;
    private const int Zip64LocatorSize = 20;
    private const int Stored = 0;
    private const int Deflated = 8;

    /// <summary>How torch.save files before 1.6 begin: pickle PROTO 2, then LONG1 of torch's magic number.</summary>
    private static readonly byte[] LegacyMagic = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

    private readonly SafeFileHandle _file;
    private readonly Dictionary<string, Entry> _byName;

    private ZipReader(string path, SafeFileHandle file, long length, List<Entry> entries)
    {
        Path = path;
        _file = file;
        Length = length;
        Entries = entries;
        _byName = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var entry in entries)
            _byName.TryAdd(entry.Name, entry);
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>The entries in central-directory order.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    public static ZipReader Open(string path)
    {
        var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long length = RandomAccess.GetLength(file);
            var entries = ReadDirectory(path, file, length);
            return new ZipReader(path, file, length, entries);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public Entry? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>A whole (small) entry, CRC-checked.</summary>
    public byte[] ReadAll(Entry entry)
    {
        if (entry.Size > Array.MaxLength)
            throw Fail($"entry '{entry.Name}' is {entry.Size} bytes, too large to read into memory at once");
        var content = new byte[entry.Size];
        using var reader = OpenEntry(entry);
        reader.ReadExactly(content);
        reader.Finish();
        return content;
    }

    /// <summary>Starts reading an entry's uncompressed bytes; call <see cref="EntryReader.Finish"/>
    /// after the last byte to check the CRC.</summary>
    public EntryReader OpenEntry(Entry entry)
    {
        if ((entry.Flags & 1) != 0)
            throw Fail($"entry '{entry.Name}' is encrypted");
        if (entry.Method is not (Stored or Deflated))
            throw Fail($"entry '{entry.Name}' uses compression method {entry.Method}; only stored (0) and deflated (8) are supported");
        if (entry.Method == Stored && entry.CompressedSize != entry.Size)
            throw Fail($"entry '{entry.Name}' is corrupted: stored with {entry.CompressedSize} bytes but {entry.Size} bytes uncompressed");

        Span<byte> header = stackalloc byte[LocalHeaderSize];
        if (entry.HeaderOffset + LocalHeaderSize > Length)
            throw Truncated($"entry '{entry.Name}' starts at offset {entry.HeaderOffset}");
        ReadExactlyAt(entry.HeaderOffset, header);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != LocalHeaderSignature)
            throw Fail($"entry '{entry.Name}' is corrupted: no local header signature at offset {entry.HeaderOffset}");
        long dataOffset = entry.HeaderOffset + LocalHeaderSize
            + BinaryPrimitives.ReadUInt16LittleEndian(header[26..]) + BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
        if (dataOffset + entry.CompressedSize > Length)
            throw Truncated($"entry '{entry.Name}' needs bytes up to offset {dataOffset + entry.CompressedSize}");
        return new EntryReader(this, entry, dataOffset);
    }

    public void Dispose() => _file.Dispose();

    private static List<Entry> ReadDirectory(string path, SafeFileHandle file, long length)
    {
        Span<byte> head = stackalloc byte[16];
        int headLength = RandomAccess.Read(file, head, 0);
        head = head[..headLength];
        if (headLength == 0)
            throw new CheckpointFormatException(path, "is empty (0 bytes), not a torch.save checkpoint");
        if (headLength < 4 || BinaryPrimitives.ReadUInt32LittleEndian(head) != LocalHeaderSignature)
        {
            var shown = string.Join(" ", head.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
            if (head.StartsWith(LegacyMagic))
                throw new CheckpointFormatException(path,
                    $"is in the legacy torch.save format of torch < 1.6 (a bare pickle; first bytes {shown}), which is not supported; " +
                    "re-save it with a current torch (torch.save(torch.load(f), f)) to get the zip format");
            throw new CheckpointFormatException(path,
                $"is not a zip archive, so not a torch.save (>= 1.6) checkpoint: its first bytes are {shown}, a zip starts with 50 4b 03 04");
        }

        // The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB.
        var tail = new byte[Math.Min(length, EndSize + ushort.MaxValue)];
        ReadExactlyAt(path, file, length - tail.Length, tail);
        int end = -1;
        for (int i = tail.Length - EndSize; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndSignature
                && i + EndSize + BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(i + 20)) <= tail.Length)
            {
                end = i;
                break;
            }
        }
        if (end < 0)
            throw new CheckpointFormatException(path,
                $"is truncated or damaged: it starts as a zip archive but its end-of-central-directory record is missing (the file has {length} bytes)");

        long endOffset = length - tail.Length + end;
        long count = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(end + 10));
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 12));
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 16));
        if (count == ushort.MaxValue || directorySize == uint.MaxValue || directoryOffset == uint.MaxValue)
            (count, directorySize, directoryOffset) = ReadZip64End(path, file, endOffset);

        if (directoryOffset + directorySize > length || directorySize > Array.MaxLength)
            throw new CheckpointFormatException(path,
                $"is truncated or damaged: its central directory (offset {directoryOffset}, {directorySize} bytes) runs past the end of the file ({length} bytes)");
        var directory = new byte[directorySize];
        ReadExactlyAt(path, file, directoryOffset, directory);

        var entries = new List<Entry>();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            if (pos + CentralHeaderSize > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(pos)) != CentralHeaderSignature)
                throw new CheckpointFormatException(path, $"has a damaged central directory: entry {n} of {count} is not where the directory says");
            var h = directory.AsSpan(pos);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            if (pos + CentralHeaderSize + nameLength + extraLength + commentLength > directory.Length)
                throw new CheckpointFormatException(path, $"has a damaged central directory: entry {n} of {count} runs past its end");
            var name = Encoding.UTF8.GetString(h.Slice(CentralHeaderSize, nameLength));
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            ApplyZip64Extra(h.Slice(CentralHeaderSize + nameLength, extraLength), ref size, ref compressed, ref offset);
            entries.Add(new Entry(name, BinaryPrimitives.ReadUInt16LittleEndian(h[10..]), BinaryPrimitives.ReadUInt16LittleEndian(h[8..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[16..]), compressed, size, offset));
            pos += CentralHeaderSize + nameLength + extraLength + commentLength;
        }
        return entries;
    }

    /// <summary>Counts and offsets from the zip64 end record, found through the locator just before the classic one.</summary>
    private static (long Count, long Size, long Offset) ReadZip64End(string path, SafeFileHandle file, long endOffset)
    {
        Span<byte> locator = stackalloc byte[Zip64LocatorSize];
        Span<byte> record = stackalloc byte[Zip64EndSize];
        if (endOffset >= Zip64LocatorSize)
        {
            ReadExactlyAt(path, file, endOffset - Zip64LocatorSize, locator);
            long recordOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(locator[8..]);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) == Zip64LocatorSignature && recordOffset >= 0
                && recordOffset + Zip64EndSize <= endOffset)
            {
                ReadExactlyAt(path, file, recordOffset, record);
                if (BinaryPrimitives.ReadUInt32LittleEndian(record) == Zip64EndSignature)
                    return ((long)BinaryPrimitives.ReadUInt64LittleEndian(record[32..]),
                        (long)BinaryPrimitives.ReadUInt64LittleEndian(record[40..]),
                        (long)BinaryPrimitives.ReadUInt64LittleEndian(record[48..]));
            }
        }
        throw new CheckpointFormatException(path, "is damaged: its end record asks for zip64 but there is no valid zip64 end record");
    }

    /// <summary>Replaces the 32-bit fields saturated at 0xFFFFFFFF with the zip64 extra field's values.</summary>
    private static void ApplyZip64Extra(ReadOnlySpan<byte> extra, ref long size, ref long compressed, ref long offset)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int fieldLength = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]), extra.Length - 4);
            var field = extra.Slice(4, fieldLength);
            if (id == 1)
            {
                if (size == uint.MaxValue && field.Length >= 8) { size = (long)BinaryPrimitives.ReadUInt64LittleEndian(field); field = field[8..]; }
                if (compressed == uint.MaxValue && field.Length >= 8) { compressed = (long)BinaryPrimitives.ReadUInt64LittleEndian(field); field = field[8..]; }
                if (offset == uint.MaxValue && field.Length >= 8) offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(field);
                return;
            }
            extra = extra[(4 + fieldLength)..];
        }
    }

    private void ReadExactlyAt(long offset, Span<byte> destination) => ReadExactlyAt(Path, _file, offset, destination);

    private static void ReadExactlyAt(string path, SafeFileHandle file, long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n == 0)
                throw new CheckpointFormatException(path, $"is truncated: the file ends at offset {offset} while more bytes were expected");
            destination = destination[n..];
            offset += n;
        }
    }

    private CheckpointFormatException Fail(string detail) => new(Path, detail);

    private CheckpointFormatException Truncated(string detail) => new(Path, $"is truncated: {detail}, but the file has only {Length} bytes");

    /// <summary>Sequential reads of one entry's uncompressed bytes, with the CRC kept as they pass.</summary>
    internal sealed class EntryReader : IDisposable
    {
        private readonly ZipReader _zip;
        private readonly Entry _entry;
        private readonly DeflateStream? _inflater;
        private long _position; // the next file offset, for stored entries
        private long _remaining;
        private uint _crc;

        public EntryReader(ZipReader zip, Entry entry, long dataOffset)
        {
            _zip = zip;
            _entry = entry;
            _position = dataOffset;
            _remaining = entry.Size;
            if (entry.Method == Deflated)
                _inflater = new DeflateStream(new WindowStream(zip._file, dataOffset, entry.CompressedSize), CompressionMode.Decompress);
        }

        public void ReadExactly(Span<byte> destination)
        {
            if (destination.Length > _remaining)
                throw _zip.Fail($"entry '{_entry.Name}' holds {_entry.Size} bytes; more were asked of it");
            var rest = destination;
            while (!rest.IsEmpty)
            {
                int n = _inflater is null ? RandomAccess.Read(_zip._file, rest, _position) : Inflate(rest);
                if (n == 0)
                    throw _inflater is null
                        ? _zip.Truncated($"entry '{_entry.Name}' ends early")
                        : _zip.Fail($"entry '{_entry.Name}' is corrupted: it inflates to {_entry.Size - _remaining} bytes, the directory says {_entry.Size}");
                _position += n;
                _remaining -= n;
                rest = rest[n..];
            }
            _crc = Crc32.Update(_crc, destination);
        }

        /// <summary>Checks, once every byte has been read, that the entry's CRC-32 is the recorded one.</summary>
        public void Finish()
        {
            if (_remaining != 0)
                throw new InvalidOperationException($"{_remaining} bytes of '{_entry.Name}' were left unread");
            if (_crc != _entry.Crc)
                throw _zip.Fail($"entry '{_entry.Name}' is corrupted: its CRC-32 is {_crc:x8} but the zip directory says {_entry.Crc:x8}");
        }

        public void Dispose() => _inflater?.Dispose();

        private int Inflate(Span<byte> destination)
        {
            try
            {
                return _inflater!.Read(destination);
            }
            catch (InvalidDataException e)
            {
                throw _zip.Fail($"entry '{_entry.Name}' is corrupted: it cannot be inflated ({e.Message})");
            }
        }
    }

    /// <summary>A read-only stream over one byte range of the file, so that the inflater cannot read
    /// past the entry and a damaged entry fails instead of consuming its neighbours.</summary>
    private sealed class WindowStream : Stream
    {
        private readonly SafeFileHandle _file;
        private readonly long _start;
        private readonly long _length;
        private long _position;

        public WindowStream(SafeFileHandle file, long start, long length)
        {
            _file = file;
            _start = start;
            _length = length;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(Span<byte> buffer)
        {
            var window = buffer[..(int)Math.Min(buffer.Length, _length - _position)];
            int n = window.IsEmpty ? 0 : RandomAccess.Read(_file, window, _start + _position);
            _position += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
