using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace Conformance.Tests.Codec;

/// <summary>
/// Writes zip archives byte by byte, so a test can state what a hostile file declares (sizes,
/// methods, names, offsets) independently of what it holds. Only for building test inputs.
/// </summary>
internal sealed class RawZip
{
    private readonly List<Item> _items = new();

    internal sealed record Item(string Name, byte[] Data, bool Deflate)
    {
        public long? DeclaredSize { get; init; }
        public string? LocalName { get; init; }
        public long? OffsetOverride { get; init; }
        public uint? CrcOverride { get; init; }
    }

    public RawZip Add(string name, byte[] data, bool deflate = false, long? declaredSize = null, string? localName = null, long? offset = null, uint? crc = null)
    {
        _items.Add(new Item(name, data, deflate) { DeclaredSize = declaredSize, LocalName = localName, OffsetOverride = offset, CrcOverride = crc });
        return this;
    }

    /// <summary>The entries of a real archive, in its directory's order, inflated.</summary>
    public static List<(string Name, byte[] Data)> Entries(byte[] archive)
    {
        var entries = new List<(string, byte[])>();
        using var zip = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read);
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            var m = new MemoryStream();
            s.CopyTo(m);
            entries.Add((e.FullName, m.ToArray()));
        }
        return entries;
    }

    public static RawZip Of(IEnumerable<(string Name, byte[] Data)> entries)
    {
        var zip = new RawZip();
        foreach (var (name, data) in entries) zip.Add(name, data);
        return zip;
    }

    public byte[] Build(byte[]? comment = null)
    {
        var (body, central) = Parts(0);
        return Concat(body, central, End(_items.Count, central.Length, body.Length, comment ?? []));
    }

    /// <summary>
    /// Two archives in one file: both sets of entries, both directories, then <paramref name="first"/>'s
    /// end record, whose comment is <paramref name="second"/>'s end record (with a comment length of
    /// <paramref name="hiddenCommentLength"/>). A reader that takes the last end-record signature it
    /// finds reads the second archive; one that checks the comment length, the first.
    /// </summary>
    public static byte[] WithHiddenEnd(RawZip first, RawZip second, int hiddenCommentLength)
    {
        var (body1, central1) = first.Parts(0);
        var (body2, central2) = second.Parts(body1.Length);
        long cd1 = body1.Length + body2.Length, cd2 = cd1 + central1.Length;
        var hidden = End(second._items.Count, central2.Length, cd2, [])[..22];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(hidden.AsSpan(20), (ushort)hiddenCommentLength);
        return Concat(body1, body2, central1, central2, End(first._items.Count, central1.Length, cd1, hidden));
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] End(int count, long directorySize, long directoryOffset, byte[] comment)
    {
        var e = new byte[22 + comment.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(8), (ushort)count);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(10), (ushort)count);
        BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(12), (uint)directorySize);
        BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(16), (uint)directoryOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(20), (ushort)comment.Length);
        comment.CopyTo(e, 22);
        return e;
    }

    /// <summary>The local headers with their data, and the central directory, for entries starting at <paramref name="start"/>.</summary>
    private (byte[] Body, byte[] Central) Parts(long start)
    {
        using var file = new MemoryStream();
        var central = new MemoryStream();
        foreach (var item in _items)
        {
            var payload = item.Deflate ? Deflate(item.Data) : item.Data;
            uint crc = item.CrcOverride ?? Crc32.HashToUInt32(item.Data);
            long size = item.DeclaredSize ?? item.Data.Length;
            long offset = start + file.Position;
            var local = Encoding.UTF8.GetBytes(item.LocalName ?? item.Name);
            var name = Encoding.UTF8.GetBytes(item.Name);
            var h = new byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), (ushort)(item.Deflate ? 8 : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(14), crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(18), (uint)payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(22), (uint)Math.Min(size, uint.MaxValue));
            BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(26), (ushort)local.Length);
            file.Write(h);
            file.Write(local);
            file.Write(payload);

            bool zip64 = item.OffsetOverride is > uint.MaxValue or < 0 || size >= uint.MaxValue;
            var c = new byte[46];
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(4), 45);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(6), 45);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(10), (ushort)(item.Deflate ? 8 : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(16), crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(20), (uint)payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(24), zip64 ? uint.MaxValue : (uint)size);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(28), (ushort)name.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(30), (ushort)(zip64 ? 20 : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(42), zip64 ? uint.MaxValue : (uint)(item.OffsetOverride ?? offset));
            central.Write(c);
            central.Write(name);
            if (zip64)
            {
                var x = new byte[20];
                BinaryPrimitives.WriteUInt16LittleEndian(x, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(x.AsSpan(2), 16);
                BinaryPrimitives.WriteInt64LittleEndian(x.AsSpan(4), size);
                BinaryPrimitives.WriteInt64LittleEndian(x.AsSpan(12), item.OffsetOverride ?? offset);
                central.Write(x);
            }
        }
        return (file.ToArray(), central.ToArray());
    }

    public static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
            deflate.Write(data);
        return output.ToArray();
    }
}
