using System.Buffers.Binary;
using System.Numerics;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Reads the legacy torch.save format (torch &lt; 1.6, and later ones with
/// <c>_use_new_zipfile_serialization=False</c>) as torch.load reads it: five pickles one after the
/// other (torch's magic number, the protocol version 1001, sys_info, the object itself, the list of
/// storage keys), then each storage in the key list's order as an 8-byte little-endian element count
/// and its raw little-endian bytes. The object's persistent ids are
/// <c>('storage', torch.FloatStorage, key, location, numel, view_metadata)</c>.
/// <para>The file has no directory: where each storage lies follows from the element sizes of
/// storages the pickle names only as it goes, and the key list comes after the pickle. So the pickles
/// are read twice: once to learn the storages and where the pickles end (building nothing), then,
/// with every record laid out and checked against the file, for real, through the zip path's
/// machinery (a legacy record is read like a stored zip entry, without a CRC, which the format lacks).
/// Every pickle is read by the same restricted reader with the same allowlist and limits.</para>
/// Refused, naming the file and what is wrong: a storage the pickle uses that the key list lacks, a key
/// listed twice or never used, an element count in the file that differs from the pickle's, a file
/// that ends inside a pickle or a storage, and bytes after the last storage.
/// </summary>
internal static class LegacyCheckpoint
{
    /// <summary>The name messages give the object's pickle (<see cref="CheckpointFormatException.Entry"/>).</summary>
    internal const string PickleName = "legacy pickle";

    /// <summary>torch.serialization's MAGIC_NUMBER, 0x1950a86a20f9469cfc6c, as LONG1 stores it (little-endian).</summary>
    private static readonly byte[] MagicBytes = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

    private static readonly BigInteger Magic = new(MagicBytes, isUnsigned: true, isBigEndian: false);

    /// <summary>torch.serialization's PROTOCOL_VERSION: the only one torch.load reads.</summary>
    private const long ProtocolVersion = 1001;

    /// <summary>Bytes of the file read at first for the pickles; more are read when they are longer.</summary>
    private const int FirstRead = 1 << 20;

    /// <summary>Whether a file starts with a pickle of torch's magic number: PROTO 2 to 5, perhaps a
    /// FRAME (protocol 4 and 5), then LONG1 of its 10 bytes.</summary>
    internal static bool Starts(ReadOnlySpan<byte> head)
    {
        if (head.Length < 2 || head[0] != 0x80 || head[1] is < 2 or > 5)
            return false;
        int p = 2;
        if (head.Length > p && head[p] == 0x95)
            p += 9;
        return head.Length >= p + 2 + MagicBytes.Length && head[p] == 0x8a && head[p + 1] == MagicBytes.Length
               && head.Slice(p + 2, MagicBytes.Length).SequenceEqual(MagicBytes);
    }

    /// <summary>Reads <paramref name="path"/> when it is in the legacy format; false (reading nothing more) when it is not.</summary>
    internal static bool TryLoad(string path, TensorBackend backend, CheckpointLimits limits, out object? result)
    {
        result = null;
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, null, $"cannot be opened: {e.Message}", e);
        }
        using (file)
        {
            long length = RandomAccess.GetLength(file);
            var head = new byte[(int)Math.Min(length, 32)];
            ZipReader.ReadExactlyAt(path, file, 0, head);
            if (!Starts(head))
                return false;
            result = Load(path, file, length, backend, limits);
            return true;
        }
    }

    /// <summary>What the first reading found: where the object's pickle starts and ends, the storages it
    /// uses (key to dtype and count, in the order it names them), the key list, and where the storages start.</summary>
    private sealed record Probe(int MainStart, int MainEnd, Dictionary<string, (TorchDtype Dtype, long Count)> Storages, List<string> Keys, long DataStart);

    private static object? Load(string path, SafeFileHandle file, long length, TensorBackend backend, CheckpointLimits limits)
    {
        // The pickles together may not pass MaxPickleBytes; the buffer grows to what they need, up to that or the file.
        long cap = Math.Min(length, Math.Min(limits.MaxPickleBytes, Array.MaxLength));
        long size = Math.Min(cap, FirstRead);
        byte[] buffer;
        Probe probe;
        while (true)
        {
            buffer = new byte[size];
            ZipReader.ReadExactlyAt(path, file, 0, buffer);
            long? needed = null;
            try
            {
                probe = Read(path, buffer, backend, limits, out needed);
                break;
            }
            catch (CheckpointFormatException e) when (e is not CheckpointLimitException)
            {
                // (needed is set once the pickles' readers have unwound, so it is looked at here, not in a filter)
                if (needed is not { } n || n <= size)
                    throw;
                if (size < cap)
                {
                    size = Math.Min(cap, Math.Max(n, size * 4));
                    continue;
                }
                var detail = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
                if (cap < length)
                    throw new CheckpointLimitException(path, e.Entry, nameof(CheckpointLimits.MaxPickleBytes), limits.MaxPickleBytes, n,
                        $"the pickles at the start of the legacy file (at least; {detail})");
                throw new CheckpointFormatException(path, e.Entry, $"is truncated: the file ({length:N0} bytes) ends inside its pickles; {detail}", e);
            }
        }

        var records = Layout(path, file, length, probe, limits);
        var zip = ZipReader.OverRecords(path, file, length, records.Values.ToList());
        long tensorBytes = 0;
        var pending = new List<TorchCheckpoint.Pending>();
        var reader = new PickleReader(buffer, path, PickleName, backend, limits,
            (key, dtype, numel, location) => TorchCheckpoint.ReadRecord(zip, backend, limits, records[key], key, dtype, numel, location, ref tensorBytes, pending),
            () =>
            {
                TorchCheckpoint.Fill(zip, pending, backend.VerifyMappedCrc);
                zip.VerifyUnread();
            },
            storage => TorchCheckpoint.FillNow(zip, pending, storage, backend.VerifyMappedCrc),
            probe.MainStart, PickleReader.Mode.Legacy);
        var result = reader.Load();
        if (reader.End != probe.MainEnd)
            throw new InvalidOperationException($"{path}: the legacy pickle ended at offset {reader.End} when read, at {probe.MainEnd} when probed");
        return result;
    }

    /// <summary>The first reading: the three header pickles checked, the object's pickle run without
    /// loading anything, the key list read. <paramref name="needed"/> is set when a pickle ran past the buffer.</summary>
    private static Probe Read(string path, byte[] buffer, TensorBackend backend, CheckpointLimits limits, out long? needed)
    {
        needed = null;
        int position = 0;
        long? lastNeeded = null;
        object? Header(string what)
        {
            var header = new PickleReader(buffer, path, what, backend, limits, NoStorage(path, what), start: position, mode: PickleReader.Mode.Header);
            try
            {
                var value = header.Load();
                position = header.End;
                return value;
            }
            finally
            {
                lastNeeded = header.Needed;
            }
        }
        try
        {
            var magic = Header("magic number pickle");
            if (magic is not BigInteger m || m != Magic)
                throw new CheckpointFormatException(path, "magic number pickle",
                    $"starts with a pickle of {Show(magic)}, not torch's magic number 0x1950a86a20f9469cfc6c; it is not a torch.save file, or it is corrupt (torch.load says 'Invalid magic number')");
            var protocol = Header("protocol version pickle");
            if (protocol is not (long or BigInteger) || (protocol is long p ? p : (BigInteger)protocol) != ProtocolVersion)
                throw new CheckpointFormatException(path, "protocol version pickle",
                    $"gives the legacy protocol version {Show(protocol)}; torch.load reads only {ProtocolVersion}, so the file is refused");
            var sysInfo = Header("sys_info pickle");
            if (sysInfo is not PyDict)
                throw new CheckpointFormatException(path, "sys_info pickle", $"holds {PyDict.Kind(sysInfo)} where torch.save writes its sys_info dict");

            int mainStart = position;
            var storages = new Dictionary<string, (TorchDtype Dtype, long Count)>(StringComparer.Ordinal);
            var main = new PickleReader(buffer, path, PickleName, backend, limits,
                (key, dtype, numel, _) =>
                {
                    storages.Add(key, (dtype, numel));
                    return null;
                },
                start: mainStart, mode: PickleReader.Mode.Probe);
            try
            {
                main.Load();
            }
            finally
            {
                lastNeeded = main.Needed;
            }
            position = main.End;
            int mainEnd = position;

            var list = Header("storage key list pickle");
            if (list is not List<object?> items || items.Any(k => k is not string))
                throw new CheckpointFormatException(path, "storage key list pickle",
                    $"holds {PyDict.Kind(list)}{(list is List<object?> ? " with an item that is not a str" : "")} where torch.save writes the list of its storage keys");
            return new Probe(mainStart, mainEnd, storages, items.Cast<string>().ToList(), position);
        }
        finally
        {
            needed = lastNeeded;
        }
    }

    /// <summary>The reader of a pickle where torch.save writes no persistent id (the reader refuses one before asking).</summary>
    private static PickleReader.StorageLoader NoStorage(string path, string what) =>
        (key, _, _, _) => throw new CheckpointFormatException(path, what, $"{what} refers to storage '{key}'");

    /// <summary>
    /// Where each storage lies, in the key list's order: its 8-byte element count, which must be the
    /// pickle's, then its bytes, all inside the file, and nothing after the last. Each listed key must be
    /// a storage the pickle uses, once, and each storage the pickle uses must be listed.
    /// </summary>
    private static Dictionary<string, ZipReader.Entry> Layout(string path, SafeFileHandle file, long length, Probe probe, CheckpointLimits limits)
    {
        if (probe.Keys.Count > limits.MaxEntries)
            throw new CheckpointLimitException(path, "storage key list pickle", nameof(CheckpointLimits.MaxEntries), limits.MaxEntries, probe.Keys.Count, "the legacy file's storage key list");
        var records = new Dictionary<string, ZipReader.Entry>(StringComparer.Ordinal);
        long position = probe.DataStart;
        Span<byte> header = stackalloc byte[8];
        string? last = null;
        foreach (var key in probe.Keys)
        {
            var name = RecordName(key);
            if (records.ContainsKey(key))
                throw new CheckpointFormatException(path, name, $"lists storage '{key}' twice in its storage key list; each storage's bytes follow once");
            if (!probe.Storages.TryGetValue(key, out var storage))
                throw new CheckpointFormatException(path, name,
                    $"lists storage '{key}' in its storage key list, but the pickle never uses it (torch.load fails on that too), so the file is damaged");
            if (length - position < header.Length)
                throw new CheckpointFormatException(path, name,
                    $"is truncated: storage '{key}' ({storage.Count:N0} x {storage.Dtype.Name}) should start at offset {position:N0} with its 8-byte element count, but the file has only {length:N0} bytes");
            ZipReader.ReadExactlyAt(path, file, position, header);
            long count = BinaryPrimitives.ReadInt64LittleEndian(header);
            if (count != storage.Count)
                throw new CheckpointFormatException(path, name,
                    $"storage '{key}' at offset {position:N0} holds {count:N0} elements by its own count, but the pickle declares it as {storage.Count:N0} x {storage.Dtype.Name}; the file is corrupt");
            long bytes = storage.Count > (long.MaxValue - position) / storage.Dtype.ElementSize ? long.MaxValue : storage.Count * storage.Dtype.ElementSize;
            long left = length - position - header.Length;
            if (bytes > left)
                throw new CheckpointFormatException(path, name,
                    $"is truncated: storage '{key}' needs {(bytes == long.MaxValue ? "more than the file's" : $"{bytes:N0}")} bytes ({storage.Count:N0} x {storage.Dtype.Name}, {storage.Dtype.ElementSize} bytes each) from offset {position + header.Length:N0}, " +
                    $"but only {left:N0} bytes are left in the file");
            records.Add(key, new ZipReader.Entry(name, ZipReader.Stored, 0, 0, bytes, bytes, position) { DataOffset = position + header.Length, HasCrc = false });
            position += header.Length + bytes;
            last = key;
        }
        foreach (var (key, storage) in probe.Storages)
        {
            if (!records.ContainsKey(key))
                throw new CheckpointFormatException(path, RecordName(key),
                    $"the pickle uses storage '{key}' ({storage.Count:N0} x {storage.Dtype.Name}), but the storage key list does not name it, so its bytes are not in the file");
        }
        if (position != length)
            throw new CheckpointFormatException(path, null,
                $"has {length - position:N0} bytes after its last storage ({(last is null ? "it has none; the key list pickle ends" : $"'{last}' ends")} at offset {position:N0}); " +
                "torch.save writes nothing there, so the file is damaged or something was appended to it");
        return records;
    }

    /// <summary>How messages and <see cref="CheckpointFormatException.Entry"/> name a legacy storage record.</summary>
    private static string RecordName(string key) => $"storage {key}";

    private static string Show(object? value) => value switch
    {
        long n => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
        BigInteger b => b.Sign < 0 ? b.ToString(System.Globalization.CultureInfo.InvariantCulture) : "0x" + b.ToString("x", System.Globalization.CultureInfo.InvariantCulture).TrimStart('0').PadLeft(1, '0'),
        string s => $"'{s}'",
        _ => PyDict.Kind(value),
    };
}
