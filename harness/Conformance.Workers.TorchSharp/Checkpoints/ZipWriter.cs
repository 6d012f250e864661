using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// Writes the zip container the way torch's PyTorchStreamWriter (caffe2/serialize/inline_container.cc)
/// does: every entry stored uncompressed, its data starting at a 64-byte-aligned file offset so that
/// torch.load(mmap=True) can map storages in place. The alignment is bought with padding in a local
/// extra field tagged "FB", as torch writes it. Data are written with positional writes straight from
/// the caller's memory; each local header's CRC is patched in once its entry is complete. No zip64:
/// anything at or past 4 GiB is refused.
/// </summary>
internal sealed class ZipWriter
{
    private const int Alignment = 64;
    private const int LocalHeaderSize = 30;
    private const int CentralHeaderSize = 46;
    private const int EndSize = 22;
    private const int PaddingFieldHeader = 4; // "FB" + 16-bit length
    private const ushort Version = 20; // 2.0: stored entries, no zip64
    private const ushort DosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01, for reproducible files

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly List<(byte[] Name, uint Crc, uint Size, uint Offset)> _written = new();
    private long _offset;
    private (byte[] Name, long Size, long HeaderOffset)? _current;
    private long _currentWritten;
    private uint _currentCrc;

    public ZipWriter(SafeFileHandle file, string path)
    {
        _file = file;
        _path = path;
    }

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
        long dataStart = _offset + LocalHeaderSize + nameBytes.Length + PaddingFieldHeader;
        int padding = (int)((Alignment - dataStart % Alignment) % Alignment);
        if (_offset + LocalHeaderSize + nameBytes.Length + PaddingFieldHeader + padding + size > uint.MaxValue)
            throw new CheckpointFormatException(_path,
                $"entry '{name}' ({size} bytes) would end past 4 GiB; this writer does not write zip64");

        var header = new byte[LocalHeaderSize + nameBytes.Length + PaddingFieldHeader + padding];
        var h = header.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate);
        // CRC (offset 14) is patched in by EndEntry; method, flags and time stay 0.
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)size);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(PaddingFieldHeader + padding));
        nameBytes.CopyTo(h[LocalHeaderSize..]);
        var field = h[(LocalHeaderSize + nameBytes.Length)..];
        field[0] = (byte)'F';
        field[1] = (byte)'B';
        BinaryPrimitives.WriteUInt16LittleEndian(field[2..], (ushort)padding);
        field[PaddingFieldHeader..].Fill((byte)'Z');

        _current = (nameBytes, size, _offset);
        _currentWritten = 0;
        _currentCrc = 0;
        Append(header);
    }

    /// <summary>Appends the next bytes of the current entry.</summary>
    public void Write(ReadOnlySpan<byte> chunk)
    {
        var current = _current ?? throw new InvalidOperationException("no entry begun");
        if (_currentWritten + chunk.Length > current.Size)
            throw new InvalidOperationException($"more than the {current.Size} bytes announced for an entry");
        _currentCrc = Crc32.Update(_currentCrc, chunk);
        _currentWritten += chunk.Length;
        Append(chunk);
    }

    public void EndEntry()
    {
        var current = _current ?? throw new InvalidOperationException("no entry begun");
        if (_currentWritten != current.Size)
            throw new InvalidOperationException($"{_currentWritten} bytes written of the {current.Size} announced for an entry");
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, _currentCrc);
        RandomAccess.Write(_file, crc, current.HeaderOffset + 14);
        _written.Add((current.Name, _currentCrc, (uint)current.Size, (uint)current.HeaderOffset));
        _current = null;
    }

    /// <summary>Writes the central directory and the end record, which make the file a zip.</summary>
    public void Finish()
    {
        if (_current is not null)
            throw new InvalidOperationException("the last entry was not ended");
        if (_written.Count > ushort.MaxValue)
            throw new CheckpointFormatException(_path, $"{_written.Count} entries need zip64, which this writer does not write");
        long directoryOffset = _offset;
        var directory = new byte[_written.Sum(e => CentralHeaderSize + e.Name.Length) + EndSize];
        var d = directory.AsSpan();
        foreach (var (name, crc, size, offset) in _written)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(d[4..], Version); // made by (MS-DOS attributes)
            BinaryPrimitives.WriteUInt16LittleEndian(d[6..], Version); // needed to extract
            BinaryPrimitives.WriteUInt16LittleEndian(d[14..], DosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(d[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(d[20..], size);
            BinaryPrimitives.WriteUInt32LittleEndian(d[24..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(d[28..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(d[42..], offset);
            name.CopyTo(d[CentralHeaderSize..]);
            d = d[(CentralHeaderSize + name.Length)..];
        }
        long directorySize = directory.Length - EndSize;
        if (directoryOffset + directory.Length > uint.MaxValue)
            throw new CheckpointFormatException(_path, "the zip central directory would end past 4 GiB; this writer does not write zip64");
        BinaryPrimitives.WriteUInt32LittleEndian(d, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], (ushort)_written.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], (ushort)_written.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], (uint)directorySize);
        BinaryPrimitives.WriteUInt32LittleEndian(d[16..], (uint)directoryOffset);
        Append(directory);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        RandomAccess.Write(_file, bytes, _offset);
        _offset += bytes.Length;
    }
}
