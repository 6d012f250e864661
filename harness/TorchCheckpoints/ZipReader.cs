using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Reads the zip container of a torch.save file. Hand-parsed rather than System.IO.Compression's
/// ZipArchive so that records are read at known offsets straight into tensor memory (no whole-file
/// buffer), every failure names the file and entry, and every record is CRC-checked. Handles
/// stored entries (torch.save), deflated ones (TorchSharp.PyBridge) and zip64.
/// Ambiguous archives are refused rather than read one way: duplicate names, entries in two
/// top-level folders, overlapping entries, a local header whose name differs from the directory's.
/// Every size is checked against the file (and, for deflated entries, against deflate's largest
/// possible ratio) before anything is allocated for it.
/// </summary>
internal sealed class ZipReader : IDisposable
{
    /// <summary>A central-directory record: where an entry is and what it should contain.</summary>
    internal sealed record Entry(string Name, int Method, int Flags, uint Crc, long CompressedSize, long Size, long HeaderOffset)
    {
        /// <summary>Where the entry's data start; set once the local header has been checked.</summary>
        public long DataOffset { get; set; } = -1;

        /// <summary>Whether its CRC-32 has been checked (or, for a mapped record, its check waived by the caller).</summary>
        public bool Verified { get; set; }

        /// <summary>Whether <see cref="Crc"/> is the record's CRC-32; false for a legacy file's storage records, which have none.</summary>
        public bool HasCrc { get; init; } = true;
    }

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
    internal const int Stored = 0;
    internal const int Deflated = 8;

    /// <summary>Deflate's largest expansion: a 258-byte match coded in 2 bits, about 1032 to 1.</summary>
    internal const long MaxDeflateRatio = 1032;

    private readonly SafeFileHandle _file;
    private readonly Dictionary<string, Entry> _byName;

    private ZipReader(string path, SafeFileHandle file, long length, List<Entry> entries, bool zip = true)
    {
        Path = path;
        _file = file;
        Length = length;
        Entries = entries;
        _byName = new Dictionary<string, Entry>(StringComparer.Ordinal);
        // torch.load looks records up through miniz without MZ_ZIP_FLAG_CASE_SENSITIVE, so 'DATA.PKL'
        // and 'data.pkl' are one name to it (ASCII letters only, as miniz folds them), and which of
        // the two it reads depends on its binary search: two such names are refused like a duplicate.
        var byFolded = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!zip)
            {
                _byName.Add(entry.Name, entry);
                continue;
            }
            if (!_byName.TryAdd(entry.Name, entry))
                throw new CheckpointFormatException(path, entry.Name,
                    $"holds the entry '{entry.Name}' twice; readers disagree on which copy counts (torch.load takes one, other zip readers the other), so the file is refused");
            if (!byFolded.TryAdd(FoldCase(entry.Name), entry))
                throw new CheckpointFormatException(path, entry.Name,
                    $"holds the entries '{byFolded[FoldCase(entry.Name)].Name}' and '{entry.Name}', whose names differ only in case; torch.load finds records " +
                    "whatever their case and may read either, so the file is refused");
        }
    }

    /// <summary>A name with its ASCII letters in lower case, as miniz compares names.</summary>
    internal static string FoldCase(string name) =>
        string.Create(name.Length, name, (span, source) =>
        {
            for (int i = 0; i < source.Length; i++)
                span[i] = source[i] is >= 'A' and <= 'Z' ? (char)(source[i] + 32) : source[i];
        });

    public string Path { get; }

    public long Length { get; }

    /// <summary>The entries in central-directory order.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    public static ZipReader Open(string path, CheckpointLimits limits)
    {
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot be opened: {e.Message}", e);
        }
        try
        {
            long length = RandomAccess.GetLength(file);
            var entries = ReadDirectory(path, file, length, limits);
            var zip = new ZipReader(path, file, length, entries);
            zip.CheckLayout();
            return zip;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A legacy (torch &lt; 1.6) file's storage records, already laid out and checked against the
    /// file, read through the same entry readers as a zip's stored entries (without CRCs: the format has none).
    /// Takes <paramref name="file"/> over.</summary>
    internal static ZipReader OverRecords(string path, SafeFileHandle file, long length, List<Entry> records) =>
        new(path, file, length, records, zip: false);

    public Entry? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Checks the CRC-32 of every entry not read yet (each read entry was checked as it was read).</summary>
    public void VerifyUnread()
    {
        var buffer = new byte[1 << 16];
        foreach (var entry in Entries.Where(e => !e.Verified))
        {
            using var reader = OpenEntry(entry);
            while (reader.Remaining > 0)
                reader.ReadExactly(buffer.AsSpan(0, (int)Math.Min(buffer.Length, reader.Remaining)));
            reader.Finish();
        }
    }

    /// <summary>A whole (small) entry, CRC-checked, refused past <paramref name="maxBytes"/> before anything is allocated.</summary>
    public byte[] ReadAll(Entry entry, long maxBytes, string limitName)
    {
        if (entry.Size > maxBytes)
            throw new CheckpointLimitException(Path, entry.Name, limitName, maxBytes, entry.Size, $"entry '{entry.Name}'");
        var content = new byte[entry.Size];
        using var reader = OpenEntry(entry);
        reader.ReadExactly(content);
        reader.Finish();
        return content;
    }

    /// <summary>Starts reading an entry's uncompressed bytes; call <see cref="EntryReader.Finish"/>
    /// after the last byte to check the CRC and that nothing is left over.</summary>
    public EntryReader OpenEntry(Entry entry)
    {
        if (entry.DataOffset < 0)
            throw new InvalidOperationException($"entry '{entry.Name}' was not checked");
        return new EntryReader(this, entry);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>
    /// One reading only: each entry's local header agrees with the directory, its data lie inside
    /// the file and before the directory, no two entries overlap, the sizes are possible for the
    /// method, and every entry is in the same single top-level folder (torch.save's archive name).
    /// </summary>
    private void CheckLayout()
    {
        string? folder = null;
        Span<byte> header = stackalloc byte[LocalHeaderSize];
        foreach (var entry in Entries)
        {
            int slash = entry.Name.IndexOf('/');
            var top = slash > 0 ? entry.Name[..slash] : "";
            folder ??= top;
            if (top != folder)
                throw Fail(entry.Name,
                    $"has entries in two top-level folders ('{folder}/' and '{(top.Length == 0 ? entry.Name : top + "/")}'); a torch.save archive has exactly one, and readers disagree on which counts, so the file is refused");
            if ((entry.Flags & 1) != 0)
                throw Fail(entry.Name, $"entry '{entry.Name}' is encrypted");
            if (entry.Method is not (Stored or Deflated))
                throw Fail(entry.Name, $"entry '{entry.Name}' uses compression method {entry.Method}; only stored (0) and deflated (8) are read");
            if (entry.Method == Stored && entry.CompressedSize != entry.Size)
                throw Fail(entry.Name, $"entry '{entry.Name}' is corrupted: stored with {entry.CompressedSize} bytes but {entry.Size} bytes uncompressed");
            if (entry.Method == Deflated && entry.Size > entry.CompressedSize * MaxDeflateRatio + 1024)
                throw Fail(entry.Name,
                    $"entry '{entry.Name}' declares {entry.Size:N0} bytes inflated from {entry.CompressedSize:N0}, more than deflate can produce (about {MaxDeflateRatio}:1); the directory is damaged or hostile");
            if (entry.HeaderOffset < 0 || entry.HeaderOffset > Length - LocalHeaderSize)
                throw Truncated(entry.Name, $"entry '{entry.Name}' starts at offset {entry.HeaderOffset}");

            ReadExactlyAt(Path, _file, entry.HeaderOffset, header);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header) != LocalHeaderSignature)
                throw Fail(entry.Name, $"entry '{entry.Name}' is corrupted: no local header signature at offset {entry.HeaderOffset}");
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[26..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
            var localName = new byte[nameLength];
            if (entry.HeaderOffset + LocalHeaderSize + nameLength > Length)
                throw Truncated(entry.Name, $"entry '{entry.Name}''s local header runs past the end");
            ReadExactlyAt(Path, _file, entry.HeaderOffset + LocalHeaderSize, localName);
            if (!localName.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(entry.Name)))
                throw Fail(entry.Name,
                    $"entry '{entry.Name}' has the name '{Encoding.UTF8.GetString(localName)}' in its local header; readers disagree on which name counts, so the file is refused");
            long dataOffset = entry.HeaderOffset + LocalHeaderSize + nameLength + extraLength;
            if (entry.CompressedSize < 0 || entry.Size < 0 || dataOffset > Length - entry.CompressedSize)
                throw Truncated(entry.Name, $"entry '{entry.Name}' needs {entry.CompressedSize:N0} bytes from offset {dataOffset}");
            entry.DataOffset = dataOffset;
        }

        Entry? previous = null;
        foreach (var entry in Entries.OrderBy(e => e.HeaderOffset))
        {
            if (previous is not null && previous.DataOffset + previous.CompressedSize > entry.HeaderOffset)
                throw Fail(entry.Name,
                    $"entries '{previous.Name}' and '{entry.Name}' overlap in the file (bytes {entry.HeaderOffset} to {previous.DataOffset + previous.CompressedSize}); the file is refused");
            previous = entry;
        }
    }

    /// <summary>The zip's central directory: the format checked first, then its end record found, then its entries parsed.</summary>
    private static List<Entry> ReadDirectory(string path, SafeFileHandle file, long length, CheckpointLimits limits)
    {
        RequireZipStart(path, file);
        var (count, directorySize, directoryOffset, endOffset) = FindEndRecord(path, file, length);
        return ParseDirectory(path, file, limits, count, directorySize, directoryOffset, endOffset);
    }

    /// <summary>Refuses what is not a zip archive by its first bytes: empty, a tar archive (torch.save's first format), anything else, each said so.</summary>
    private static void RequireZipStart(string path, SafeFileHandle file)
    {
        Span<byte> head = stackalloc byte[512];
        int headLength = RandomAccess.Read(file, head, 0);
        head = head[..headLength];
        if (headLength == 0)
            throw new CheckpointFormatException(path, null, "is empty (0 bytes), not a torch.save checkpoint");
        if (headLength < 4 || BinaryPrimitives.ReadUInt32LittleEndian(head) != LocalHeaderSignature)
        {
            var shown = string.Join(" ", head[..Math.Min(headLength, 16)].ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
            // torch.load still tries tarfile first: the format of torch.save's first releases (entries sys_info,
            // pickle, storages, tensors). The legacy pickle format (torch < 1.6) never reaches here (LegacyCheckpoint).
            if (headLength >= 262 && head.Slice(257, 5).SequenceEqual("ustar"u8))
                throw new CheckpointFormatException(path, null,
                    "is a tar archive: the tar-based torch.save format of the earliest torch releases, which is not read " +
                    "(the zip format of torch >= 1.6 and the legacy pickle format of torch < 1.6 are); " +
                    "re-save it with torch (torch.save(torch.load(path), new_path)) to get the zip format");
            throw new CheckpointFormatException(path, null,
                $"is not a zip archive, so not a torch.save (>= 1.6) checkpoint, nor a legacy one (torch < 1.6: a pickle of torch's magic number, 80 02 8a 0a 6c fc 9c 46 ...): " +
                $"its first bytes are {shown}, a zip starts with 50 4b 03 04");
        }
    }

    /// <summary>
    /// The end-of-central-directory record (zip64's when the classic one says so): the directory's entry count,
    /// size and offset, and where the record is; a second record that torch.load would read instead is refused.
    /// </summary>
    private static (long Count, long DirectorySize, long DirectoryOffset, long EndOffset) FindEndRecord(string path, SafeFileHandle file, long length)
    {
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
            throw new CheckpointFormatException(path, null,
                $"is truncated or damaged: it starts as a zip archive but its end-of-central-directory record is missing (the file has {length} bytes)");

        long endOffset = length - tail.Length + end;
        long count = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(end + 10));
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 12));
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 16));
        if (count == ushort.MaxValue || directorySize == uint.MaxValue || directoryOffset == uint.MaxValue)
            (count, directorySize, directoryOffset) = ReadZip64End(path, file, endOffset);

        // miniz (torch.load) takes the last end-record signature in the tail, whatever comment length
        // the record declares; this reader, the last whose comment fits. Another signature after the
        // directory (in the comment, or past it) makes the two read different archives. Tensor bytes
        // before the directory may hold the signature by chance and are not searched.
        long searchFrom = Math.Max(0, Math.Min(directoryOffset + directorySize, endOffset) - (length - tail.Length));
        for (long i = searchFrom; i <= tail.Length - 4; i++)
        {
            if (i != end && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan((int)i)) == EndSignature)
                throw new CheckpointFormatException(path, null,
                    $"has a second end-of-central-directory record at offset {length - tail.Length + i} " +
                    $"({(i > end ? $"inside the zip comment of the one at offset {endOffset}" : $"whose zip comment holds the one at offset {endOffset}")}); " +
                    "torch.load takes the last one it finds and other readers another, so the file is refused");
        }
        return (count, directorySize, directoryOffset, endOffset);
    }

    /// <summary>The directory's entries, each bounded by the directory and the limits, names strict UTF-8.</summary>
    private static List<Entry> ParseDirectory(string path, SafeFileHandle file, CheckpointLimits limits, long count, long directorySize, long directoryOffset, long endOffset)
    {
        if (count > limits.MaxEntries)
            throw new CheckpointLimitException(path, null, nameof(CheckpointLimits.MaxEntries), limits.MaxEntries, count, "the zip directory's entry count");
        if (directoryOffset < 0 || directorySize < 0 || directoryOffset > endOffset || directorySize > endOffset - directoryOffset)
            throw new CheckpointFormatException(path, null,
                $"is truncated or damaged: its central directory (offset {directoryOffset}, {directorySize} bytes) does not lie before its end record (offset {endOffset})");
        if (count > directorySize / CentralHeaderSize)
            throw new CheckpointFormatException(path, null,
                $"has a damaged central directory: {count:N0} entries cannot fit in its {directorySize:N0} bytes");
        var directory = new byte[directorySize];
        ReadExactlyAt(path, file, directoryOffset, directory);

        var entries = new List<Entry>((int)count);
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            if (pos + CentralHeaderSize > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(pos)) != CentralHeaderSignature)
                throw new CheckpointFormatException(path, null, $"has a damaged central directory: entry {n} of {count} is not where the directory says");
            var h = directory.AsSpan(pos);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            if (pos + CentralHeaderSize + nameLength + extraLength + commentLength > directory.Length)
                throw new CheckpointFormatException(path, null, $"has a damaged central directory: entry {n} of {count} runs past its end");
            string name;
            try
            {
                name = StrictUtf8.GetString(h.Slice(CentralHeaderSize, nameLength));
            }
            catch (DecoderFallbackException)
            {
                throw new CheckpointFormatException(path, null, $"has a damaged central directory: the name of entry {n} is not valid UTF-8");
            }
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            ApplyZip64Extra(path, name, h.Slice(CentralHeaderSize + nameLength, extraLength), ref size, ref compressed, ref offset);
            entries.Add(new Entry(name, BinaryPrimitives.ReadUInt16LittleEndian(h[10..]), BinaryPrimitives.ReadUInt16LittleEndian(h[8..]),
                BinaryPrimitives.ReadUInt32LittleEndian(h[16..]), compressed, size, offset));
            pos += CentralHeaderSize + nameLength + extraLength + commentLength;
        }
        return entries;
    }

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, true);

    /// <summary>Counts and offsets from the zip64 end record, found through the locator just before the classic one.</summary>
    private static (long Count, long Size, long Offset) ReadZip64End(string path, SafeFileHandle file, long endOffset)
    {
        Span<byte> locator = stackalloc byte[Zip64LocatorSize];
        Span<byte> record = stackalloc byte[Zip64EndSize];
        if (endOffset >= Zip64LocatorSize)
        {
            ReadExactlyAt(path, file, endOffset - Zip64LocatorSize, locator);
            ulong recordOffset = BinaryPrimitives.ReadUInt64LittleEndian(locator[8..]);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) == Zip64LocatorSignature
                && recordOffset <= (ulong)(endOffset - Zip64LocatorSize - Zip64EndSize))
            {
                ReadExactlyAt(path, file, (long)recordOffset, record);
                if (BinaryPrimitives.ReadUInt32LittleEndian(record) == Zip64EndSignature)
                    return (Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(record[32..]), "entry count"),
                        Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(record[40..]), "directory size"),
                        Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(record[48..]), "directory offset"));
            }
        }
        throw new CheckpointFormatException(path, null, "is damaged: its end record asks for zip64 but there is no valid zip64 end record");
    }

    private static long Signed(string path, ulong value, string what) =>
        value <= long.MaxValue ? (long)value
            : throw new CheckpointFormatException(path, null, $"is damaged: its zip64 {what} is {value}, beyond any file");

    /// <summary>Replaces the 32-bit fields saturated at 0xFFFFFFFF with the zip64 extra field's values.</summary>
    private static void ApplyZip64Extra(string path, string name, ReadOnlySpan<byte> extra, ref long size, ref long compressed, ref long offset)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int fieldLength = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]), extra.Length - 4);
            var field = extra.Slice(4, fieldLength);
            if (id == 1)
            {
                if (size == uint.MaxValue && field.Length >= 8) { size = Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(field), $"size of '{name}'"); field = field[8..]; }
                if (compressed == uint.MaxValue && field.Length >= 8) { compressed = Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(field), $"compressed size of '{name}'"); field = field[8..]; }
                if (offset == uint.MaxValue && field.Length >= 8) offset = Signed(path, BinaryPrimitives.ReadUInt64LittleEndian(field), $"offset of '{name}'");
                return;
            }
            extra = extra[(4 + fieldLength)..];
        }
    }

    /// <summary>Reads exactly <paramref name="destination"/>'s length at <paramref name="offset"/>, or refuses the file as truncated (also the legacy reader's).</summary>
    internal static void ReadExactlyAt(string path, SafeFileHandle file, long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n == 0)
                throw new CheckpointFormatException(path, null, $"is truncated: the file ends at offset {offset} while more bytes were expected");
            destination = destination[n..];
            offset += n;
        }
    }

    private CheckpointFormatException Fail(string? entry, string detail) => new(Path, entry, detail);

    private CheckpointFormatException Truncated(string? entry, string detail) =>
        new(Path, entry, $"is truncated: {detail}, but the file has only {Length} bytes");

    /// <summary>Sequential reads of one entry's uncompressed bytes, with the CRC kept as they pass.
    /// A deflated entry is inflated as it is read, never past its declared size.</summary>
    internal sealed class EntryReader : IDisposable
    {
        private readonly ZipReader _zip;
        private readonly Entry _entry;
        private readonly DeflateStream? _inflater;
        private readonly Crc32 _crc = new();
        private long _position; // the next file offset, for stored entries
        private long _remaining;
        private uint? _wholeCrc; // set when the entry was read whole, in parallel segments

        public EntryReader(ZipReader zip, Entry entry)
        {
            _zip = zip;
            _entry = entry;
            _position = entry.DataOffset;
            _remaining = entry.Size;
            if (entry.Method == Deflated)
                _inflater = new DeflateStream(new WindowStream(zip._file, entry.DataOffset, entry.CompressedSize), CompressionMode.Decompress);
        }

        public string Name => _entry.Name;

        /// <summary>
        /// Reads a whole stored entry to <paramref name="destination"/> on several threads, each
        /// reading and CRC-ing its own segment; the segment CRCs are combined into the entry's.
        /// Falls back to sequential reads for a deflated entry or after a partial read.
        /// </summary>
        public unsafe void ReadWhole(byte* destination)
        {
            if (_inflater is not null || _remaining != _entry.Size || _wholeCrc is not null)
            {
                for (long offset = 0; _remaining > 0; offset += Segments.Chunk)
                    ReadExactly(new Span<byte>(destination + offset, (int)Math.Min(Segments.Chunk, _remaining)));
                return;
            }
            nint start = (nint)destination;
            _wholeCrc = Segments.Run(_entry.Size, (offset, length) =>
            {
                var crc = new Crc32();
                for (long done = 0; done < length; )
                {
                    var span = new Span<byte>((byte*)start + offset + done, (int)Math.Min(Segments.Chunk, length - done));
                    int n = RandomAccess.Read(_zip._file, span, _entry.DataOffset + offset + done);
                    if (n == 0)
                        throw _zip.Truncated(_entry.Name, $"entry '{_entry.Name}' ends early");
                    crc.Append(span[..n]);
                    done += n;
                }
                return crc.GetCurrentHashAsUInt32();
            });
            _remaining = 0;
        }

        /// <summary>Takes a stored entry's bytes as read in place (a memory-mapped file), checking
        /// their CRC over <paramref name="mapped"/> unless <paramref name="verifyCrc"/> is false.</summary>
        public unsafe void TakeMapped(byte* mapped, bool verifyCrc)
        {
            if (_inflater is not null || _remaining != _entry.Size)
                throw new InvalidOperationException($"entry '{_entry.Name}' cannot be taken in place");
            nint start = (nint)mapped;
            _wholeCrc = verifyCrc
                ? Segments.Run(_entry.Size, (offset, length) =>
                {
                    var crc = new Crc32();
                    for (long done = 0; done < length; done += Segments.Chunk)
                        crc.Append(new ReadOnlySpan<byte>((byte*)start + offset + done, (int)Math.Min(Segments.Chunk, length - done)));
                    return crc.GetCurrentHashAsUInt32();
                })
                : _entry.Crc;
            _remaining = 0;
        }

        public long Remaining => _remaining;

        public long Length => _entry.Size;

        public void ReadExactly(Span<byte> destination)
        {
            if (destination.Length > _remaining)
                throw _zip.Fail(_entry.Name, $"entry '{_entry.Name}' holds {_entry.Size} bytes; more were asked of it");
            var rest = destination;
            while (!rest.IsEmpty)
            {
                int n = _inflater is null ? RandomAccess.Read(_zip._file, rest, _position) : Inflate(rest);
                if (n == 0)
                    throw _inflater is null
                        ? _zip.Truncated(_entry.Name, $"entry '{_entry.Name}' ends early")
                        : _zip.Fail(_entry.Name, $"entry '{_entry.Name}' is corrupted: it inflates to {_entry.Size - _remaining + (destination.Length - rest.Length)} bytes, the directory says {_entry.Size}");
                _position += n;
                rest = rest[n..];
            }
            _remaining -= destination.Length;
            _crc.Append(destination);
        }

        /// <summary>Checks, once every byte has been read, that the entry's CRC-32 is the recorded one
        /// and that a deflated entry holds nothing beyond its declared size.</summary>
        public void Finish()
        {
            if (_remaining != 0)
                throw new InvalidOperationException($"{_remaining} bytes of '{_entry.Name}' were left unread");
            if (_inflater is not null)
            {
                Span<byte> probe = stackalloc byte[1];
                if (Inflate(probe) != 0)
                    throw _zip.Fail(_entry.Name, $"entry '{_entry.Name}' is corrupted: it inflates to more than the {_entry.Size} bytes the directory says");
            }
            uint crc = _wholeCrc ?? _crc.GetCurrentHashAsUInt32();
            if (_entry.HasCrc && crc != _entry.Crc)
                throw _zip.Fail(_entry.Name, $"entry '{_entry.Name}' is corrupted: its CRC-32 is {crc:x8} but the zip directory says {_entry.Crc:x8}");
            _entry.Verified = true;
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
                throw _zip.Fail(_entry.Name, $"entry '{_entry.Name}' is corrupted: it cannot be inflated ({e.Message})");
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
