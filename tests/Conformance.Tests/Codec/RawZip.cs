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
    }

    public RawZip Add(string name, byte[] data, bool deflate = false, long? declaredSize = null, string? localName = null, long? offset = null)
    {
        _items.Add(new Item(name, data, deflate) { DeclaredSize = declaredSize, LocalName = localName, OffsetOverride = offset });
        return this;
    }

    public byte[] Build()
    {
        using var file = new MemoryStream();
        var central = new MemoryStream();
        foreach (var item in _items)
        {
            var payload = item.Deflate ? Deflate(item.Data) : item.Data;
            uint crc = Crc32.HashToUInt32(item.Data);
            long size = item.DeclaredSize ?? item.Data.Length;
            long offset = file.Position;
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
        long directoryOffset = file.Position;
        central.Position = 0;
        central.CopyTo(file);
        var e = new byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(8), (ushort)_items.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(10), (ushort)_items.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(12), (uint)central.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(16), (uint)directoryOffset);
        file.Write(e);
        return file.ToArray();
    }

    public static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
            deflate.Write(data);
        return output.ToArray();
    }
}
