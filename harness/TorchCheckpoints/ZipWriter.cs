using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Writes the zip container the way torch's PyTorchStreamWriter (caffe2/serialize/inline_container.cc)
/// does: every entry stored uncompressed, its data starting at a 64-byte-aligned file offset so that
/// torch.load(mmap=True) can map storages in place. The alignment is bought with padding in a local
/// extra field tagged "FB", as torch writes it. Data are written with positional writes straight from
/// the caller's memory; each local header's CRC is patched in once its entry is complete.
/// Entries, offsets or a directory at or past 4 GiB get zip64 fields (as miniz writes them, which
/// torch.load and Python's zipfile read), and only then, so small files stay plain zip 2.0.
/// </summary>
internal sealed class ZipWriter
{
    private const int Alignment = 64;
    private const int LocalHeaderSize = 30;
    private const int CentralHeaderSize = 46;
    private const int EndSize = 22;
    private const int Zip64EndSize = 56;
    private const int Zip64LocatorSize = 20;
    private const int PaddingFieldHeader = 4; // "FB" + 16-bit length
    private const int Zip64LocalExtra = 20; // id, length, size, compressed size
    private const ushort Version = 20; // 2.0: stored entries
    private const ushort Version64 = 45; // 4.5: zip64
    private const ushort DosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01, for reproducible files

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly bool _forceZip64;
    private readonly List<Written> _written = new();

    /// <summary>An entry whose header is in the file; its CRC is known once its data are.</summary>
    private sealed class Written(byte[] name, long size, long offset)
    {
        public byte[] Name { get; } = name;
        public long Size { get; } = size;
        public long Offset { get; } = offset;
        public uint Crc { get; set; }
        public bool Complete { get; set; }
    }

    /// <summary>A record reserved by <see cref="Reserve"/>: where its data go.</summary>
    public sealed record Reservation(string Name, long Size, long DataOffset, int Index);
    private long _offset;
    private (byte[] Name, long Size, long HeaderOffset)? _current;
    private long _currentWritten;
    private readonly Crc32 _crc = new();

    /// <param name="file">The file, open for writing, positioned nowhere: writes are positional from offset 0.</param>
    /// <param name="path">The destination, for messages.</param>
    /// <param name="forceZip64">Writes zip64 fields for every entry and the end record even when
    /// nothing needs them: how tests check the zip64 layout against torch.load on a small file.</param>
    public ZipWriter(SafeFileHandle file, string path, bool forceZip64 = false)
    {
        _file = file;
        _path = path;
        _forceZip64 = forceZip64;
    }

    /// <summary>Bytes written so far.</summary>
    public long Position => _offset;

    public void WriteEntry(string name, ReadOnlySpan<byte> content)
    {
        BeginEntry(name, content.Length);
        Write(content);
        EndEntry();
    }

    /// <summary>Writes an entry's local header; its <paramref name="size"/> bytes follow through <see cref="Write"/>.</summary>
    public void BeginEntry(string name, long size)
    {
        if (_current is not null)
            throw new InvalidOperationException($"entry '{name}' begun before the previous one ended");
        var nameBytes = Encoding.UTF8.GetBytes(name);
        bool zip64 = _forceZip64 || size >= uint.MaxValue;
        int extra64 = zip64 ? Zip64LocalExtra : 0;
        long dataStart = _offset + LocalHeaderSize + nameBytes.Length + extra64 + PaddingFieldHeader;
        int padding = (int)((Alignment - dataStart % Alignment) % Alignment);

        var header = new byte[LocalHeaderSize + nameBytes.Length + extra64 + PaddingFieldHeader + padding];
        var h = header.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], zip64 ? Version64 : Version);
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate);
        // CRC (offset 14) is patched in by EndEntry; method, flags and time stay 0.
        uint size32 = zip64 ? uint.MaxValue : (uint)size;
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], size32);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], size32);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(extra64 + PaddingFieldHeader + padding));
        nameBytes.CopyTo(h[LocalHeaderSize..]);
        var field = h[(LocalHeaderSize + nameBytes.Length)..];
        if (zip64)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(field, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(field[2..], 16);
            BinaryPrimitives.WriteInt64LittleEndian(field[4..], size);
            BinaryPrimitives.WriteInt64LittleEndian(field[12..], size);
            field = field[Zip64LocalExtra..];
        }
        field[0] = (byte)'F';
        field[1] = (byte)'B';
        BinaryPrimitives.WriteUInt16LittleEndian(field[2..], (ushort)padding);
        field[PaddingFieldHeader..].Fill((byte)'Z');

        _current = (nameBytes, size, _offset);
        _currentWritten = 0;
        _crc.Reset();
        Append(header);
    }

    /// <summary>Appends the next bytes of the current entry.</summary>
    public void Write(ReadOnlySpan<byte> chunk)
    {
        var current = _current ?? throw new InvalidOperationException("no entry begun");
        if (_currentWritten + chunk.Length > current.Size)
            throw new InvalidOperationException($"more than the {current.Size} bytes announced for entry '{Encoding.UTF8.GetString(current.Name)}'");
        _crc.Append(chunk);
        _currentWritten += chunk.Length;
        Append(chunk);
    }

    public void EndEntry()
    {
        var current = _current ?? throw new InvalidOperationException("no entry begun");
        if (_currentWritten != current.Size)
            throw new InvalidOperationException($"{_currentWritten} bytes written of the {current.Size} announced for entry '{Encoding.UTF8.GetString(current.Name)}'");
        uint crc = _crc.GetCurrentHashAsUInt32();
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, crc);
        RandomAccess.Write(_file, bytes, current.HeaderOffset + 14);
        _written.Add(new Written(current.Name, current.Size, current.HeaderOffset) { Crc = crc, Complete = true });
        _current = null;
    }

    /// <summary>Writes an entry's local header and keeps room for its <paramref name="size"/> bytes,
    /// which are written later (from any thread) at <see cref="Reservation.DataOffset"/>; <see cref="Complete"/> gives its CRC.</summary>
    public Reservation Reserve(string name, long size)
    {
        BeginEntry(name, size);
        var current = _current!.Value;
        long dataOffset = _offset;
        _written.Add(new Written(current.Name, size, current.HeaderOffset));
        _current = null;
        _offset += size;
        return new Reservation(name, size, dataOffset, _written.Count - 1);
    }

    /// <summary>Records a reserved entry's CRC once its bytes are in the file; thread-safe across entries.</summary>
    public void Complete(Reservation reservation, uint crc)
    {
        var entry = _written[reservation.Index];
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, crc);
        RandomAccess.Write(_file, bytes, entry.Offset + 14);
        entry.Crc = crc;
        entry.Complete = true;
    }

    /// <summary>Writes the central directory and the end record(s), which make the file a zip.</summary>
    public void Finish()
    {
        if (_current is not null)
            throw new InvalidOperationException("the last entry was not ended");
        if (_written.FirstOrDefault(w => !w.Complete) is { } incomplete)
            throw new InvalidOperationException($"entry '{Encoding.UTF8.GetString(incomplete.Name)}' was reserved but never completed");
        long directoryOffset = _offset;
        using var directory = new MemoryStream();
        Span<byte> d = stackalloc byte[CentralHeaderSize];
        Span<byte> extra = stackalloc byte[4 + 24];
        foreach (var (name, crc, size, offset) in _written.Select(w => (w.Name, w.Crc, w.Size, w.Offset)))
        {
            bool bigSize = _forceZip64 || size >= uint.MaxValue;
            bool bigOffset = _forceZip64 || offset >= uint.MaxValue;
            int extraLength = 0;
            if (bigSize || bigOffset)
            {
                int n = 4;
                if (bigSize)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(extra[n..], size);
                    BinaryPrimitives.WriteInt64LittleEndian(extra[(n + 8)..], size);
                    n += 16;
                }
                if (bigOffset)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(extra[n..], offset);
                    n += 8;
                }
                BinaryPrimitives.WriteUInt16LittleEndian(extra, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(extra[2..], (ushort)(n - 4));
                extraLength = n;
            }
            d.Clear();
            ushort version = extraLength > 0 ? Version64 : Version;
            BinaryPrimitives.WriteUInt32LittleEndian(d, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(d[4..], version); // made by (MS-DOS attributes)
            BinaryPrimitives.WriteUInt16LittleEndian(d[6..], version); // needed to extract
            BinaryPrimitives.WriteUInt16LittleEndian(d[14..], DosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(d[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(d[20..], bigSize ? uint.MaxValue : (uint)size);
            BinaryPrimitives.WriteUInt32LittleEndian(d[24..], bigSize ? uint.MaxValue : (uint)size);
            BinaryPrimitives.WriteUInt16LittleEndian(d[28..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(d[30..], (ushort)extraLength);
            BinaryPrimitives.WriteUInt32LittleEndian(d[42..], bigOffset ? uint.MaxValue : (uint)offset);
            directory.Write(d);
            directory.Write(name);
            directory.Write(extra[..extraLength]);
        }
        long directorySize = directory.Length;
        long count = _written.Count;
        bool end64 = _forceZip64 || count >= ushort.MaxValue || directorySize >= uint.MaxValue || directoryOffset >= uint.MaxValue;
        if (end64)
        {
            long recordOffset = directoryOffset + directorySize;
            Span<byte> r = stackalloc byte[Zip64EndSize + Zip64LocatorSize];
            BinaryPrimitives.WriteUInt32LittleEndian(r, 0x06064b50);
            BinaryPrimitives.WriteInt64LittleEndian(r[4..], Zip64EndSize - 12);
            BinaryPrimitives.WriteUInt16LittleEndian(r[12..], Version64);
            BinaryPrimitives.WriteUInt16LittleEndian(r[14..], Version64);
            BinaryPrimitives.WriteInt64LittleEndian(r[24..], count);
            BinaryPrimitives.WriteInt64LittleEndian(r[32..], count);
            BinaryPrimitives.WriteInt64LittleEndian(r[40..], directorySize);
            BinaryPrimitives.WriteInt64LittleEndian(r[48..], directoryOffset);
            var locator = r[Zip64EndSize..];
            BinaryPrimitives.WriteUInt32LittleEndian(locator, 0x07064b50);
            BinaryPrimitives.WriteInt64LittleEndian(locator[8..], recordOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(locator[16..], 1);
            directory.Write(r);
        }
        Span<byte> e = stackalloc byte[EndSize];
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], end64 ? ushort.MaxValue : (ushort)count);
        BinaryPrimitives.WriteUInt16LittleEndian(e[10..], end64 ? ushort.MaxValue : (ushort)count);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], end64 ? uint.MaxValue : (uint)directorySize);
        BinaryPrimitives.WriteUInt32LittleEndian(e[16..], end64 ? uint.MaxValue : (uint)directoryOffset);
        directory.Write(e);
        Append(directory.GetBuffer().AsSpan(0, (int)directory.Length));
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        RandomAccess.Write(_file, bytes, _offset);
        _offset += bytes.Length;
    }
}
