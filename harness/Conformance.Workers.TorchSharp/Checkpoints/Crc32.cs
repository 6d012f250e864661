using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// The zip CRC-32 (IEEE, reflected polynomial 0xEDB88320). Every tensor byte of a checkpoint passes
/// through it on save and on load, so its speed bounds theirs: on x86 with PCLMULQDQ it folds 64 bytes
/// per step with carry-less multiplication (Intel, "Fast CRC Computation for Generic Polynomials Using
/// PCLMULQDQ", 2009; ~10x the table), elsewhere and for short tails it uses slicing-by-8 tables.
/// System.IO.Hashing, which has both, is not part of the BCL.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] Tables = BuildTables();

    /// <summary>Continues <paramref name="crc"/> (0 for a fresh start) over <paramref name="data"/>,
    /// as zlib's crc32(crc, data) does, so a record can be checked in chunks.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        if (Pclmulqdq.IsSupported && data.Length >= 64)
        {
            int folded = data.Length & ~15;
            state = Fold(state, data[..folded]);
            data = data[folded..];
        }
        return ~UpdateWithTables(state, data);
    }

    /// <summary>Folds four 128-bit lanes across the data, then one, then reduces to 32 bits (Barrett).
    /// Constants are x^k mod P in the bit-reflected domain, from the paper; needs 64+ bytes, a multiple of 16.</summary>
    private static uint Fold(uint state, ReadOnlySpan<byte> data)
    {
        var k1k2 = Vector128.Create(0x0154442bd4UL, 0x01c6e41596UL); // x^(512+32), x^(512-32): fold by 64 bytes
        var k3k4 = Vector128.Create(0x01751997d0UL, 0x00ccaa009eUL); // x^(128+32), x^(128-32): fold by 16 bytes
        var k5 = Vector128.Create(0x0163cd6124UL, 0UL);              // x^64: 64 bits to 32
        var poly = Vector128.Create(0x01db710641UL, 0x01f7011641UL); // P and mu for the Barrett reduction
        var low32 = Vector128.Create(~0u, 0u, ~0u, 0u).AsUInt64();

        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        var x1 = Load(ref p, 0) ^ Vector128.CreateScalar(state).AsUInt64();
        var x2 = Load(ref p, 16);
        var x3 = Load(ref p, 32);
        var x4 = Load(ref p, 48);
        nuint i = 64;
        for (; length - i >= 64; i += 64)
        {
            x1 = FoldLane(x1, k1k2) ^ Load(ref p, i);
            x2 = FoldLane(x2, k1k2) ^ Load(ref p, i + 16);
            x3 = FoldLane(x3, k1k2) ^ Load(ref p, i + 32);
            x4 = FoldLane(x4, k1k2) ^ Load(ref p, i + 48);
        }
        x1 = FoldLane(x1, k3k4) ^ x2;
        x1 = FoldLane(x1, k3k4) ^ x3;
        x1 = FoldLane(x1, k3k4) ^ x4;
        for (; length - i >= 16; i += 16)
            x1 = FoldLane(x1, k3k4) ^ Load(ref p, i);

        // 128 bits to 64, then to 32.
        x1 = Sse2.ShiftRightLogical128BitLane(x1, 8) ^ Pclmulqdq.CarrylessMultiply(x1, k3k4, 0x10);
        x1 = Pclmulqdq.CarrylessMultiply(x1 & low32, k5, 0x00) ^ Sse2.ShiftRightLogical128BitLane(x1, 4);
        // Barrett reduction to the 32-bit remainder.
        var t = Pclmulqdq.CarrylessMultiply(x1 & low32, poly, 0x10) & low32;
        x1 ^= Pclmulqdq.CarrylessMultiply(t, poly, 0x00);
        return x1.AsUInt32().GetElement(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> FoldLane(Vector128<ulong> x, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(x, k, 0x11);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Load(ref byte p, nuint offset) =>
        Unsafe.ReadUnaligned<Vector128<ulong>>(ref Unsafe.Add(ref p, offset));

    /// <summary>Slicing-by-8 on the inverted CRC state: eight bytes per step from eight 256-entry tables.</summary>
    private static uint UpdateWithTables(uint c, ReadOnlySpan<byte> data)
    {
        ref uint t = ref MemoryMarshal.GetArrayDataReference(Tables);
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        nuint i = 0;
        for (; length - i >= 8; i += 8)
        {
            ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            if (!BitConverter.IsLittleEndian)
                v = BinaryPrimitives.ReverseEndianness(v);
            uint lo = (uint)v ^ c;
            uint hi = (uint)(v >> 32);
            c = Unsafe.Add(ref t, 7 * 256 + (int)(lo & 0xFF))
                ^ Unsafe.Add(ref t, 6 * 256 + (int)((lo >> 8) & 0xFF))
                ^ Unsafe.Add(ref t, 5 * 256 + (int)((lo >> 16) & 0xFF))
                ^ Unsafe.Add(ref t, 4 * 256 + (int)(lo >> 24))
                ^ Unsafe.Add(ref t, 3 * 256 + (int)(hi & 0xFF))
                ^ Unsafe.Add(ref t, 2 * 256 + (int)((hi >> 8) & 0xFF))
                ^ Unsafe.Add(ref t, 1 * 256 + (int)((hi >> 16) & 0xFF))
                ^ Unsafe.Add(ref t, (int)(hi >> 24));
        }
        for (; i < length; i++)
            c = Unsafe.Add(ref t, (int)((c ^ Unsafe.Add(ref p, i)) & 0xFF)) ^ (c >> 8);
        return c;
    }

    /// <summary>Table k maps a byte to its CRC contribution when followed by k zero bytes.</summary>
    private static uint[] BuildTables()
    {
        var tables = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int bit = 0; bit < 8; bit++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            tables[n] = c;
        }
        for (int k = 1; k < 8; k++)
        {
            for (int n = 0; n < 256; n++)
            {
                uint previous = tables[(k - 1) * 256 + n];
                tables[k * 256 + n] = tables[previous & 0xFF] ^ (previous >> 8);
            }
        }
        return tables;
    }
}
