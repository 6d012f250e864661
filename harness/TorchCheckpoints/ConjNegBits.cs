using System.Buffers.Binary;

namespace TorchCheckpoints;

/// <summary>
/// The conj and neg bits resolved over a tensor's contiguous little-endian bytes, as torch.load's
/// tensors give their values: conj negates the imaginary part of a complex number, neg negates every
/// element (integers wrap in two's complement, floating-point numbers change sign).
/// </summary>
internal static class ConjNegBits
{
    /// <summary>Changes <paramref name="bytes"/> in place; returns why not (a phrase) where torch's own
    /// answer depends on the CPU or torch cannot give one, null when done.</summary>
    public static string? Apply(byte[] bytes, TorchDtype dtype, bool conj, bool neg)
    {
        var span = bytes.AsSpan();
        if (dtype == TorchDtype.Complex64 || dtype == TorchDtype.Complex128)
        {
            int part = dtype.ElementSize / 2;
            // torch negates a complex number as 0 - z in its vector loops and as (-re, -im) in its scalar
            // ones: the two differ for a zero part (+0 against -0) and a NaN part (sign kept or flipped),
            // and which loop an element meets depends on its position and the CPU's vector width.
            if (neg && AnyPart(span, part, p => part == 4 ? IsZeroOrNaN32(p) : IsZeroOrNaN64(p)))
                return "has a zero or NaN real or imaginary part, whose negation torch.load gives differently on different CPUs, so the file is refused";
            for (int at = 0; at < span.Length; at += part)
            {
                bool imaginary = (at / part) % 2 == 1;
                if ((conj && imaginary) ^ neg)
                    span[at + part - 1] ^= 0x80;
            }
            return null;
        }
        if (!neg)
            return null;
        switch (dtype.Name)
        {
            case "torch.float32":
            case "torch.float64":
                for (int at = dtype.ElementSize - 1; at < span.Length; at += dtype.ElementSize)
                    span[at] ^= 0x80;
                return null;
            case "torch.float16":
            case "torch.bfloat16":
            {
                // A NaN comes out of torch's scalar loop re-encoded (bfloat16: as the positive 0x7fc0) and
                // out of its vector loop with the sign flipped; which one it meets depends on the CPU.
                ushort exponent = dtype == TorchDtype.Float16 ? (ushort)0x7c00 : (ushort)0x7f80;
                for (int at = 0; at < span.Length; at += 2)
                {
                    ushort v = BinaryPrimitives.ReadUInt16LittleEndian(span[at..]);
                    if ((v & exponent) == exponent && (v & ~exponent & 0x7fff) != 0)
                        return $"holds a NaN, whose negation torch.load gives differently on different CPUs for {dtype.Name}, so the file is refused";
                }
                for (int at = 1; at < span.Length; at += 2)
                    span[at] ^= 0x80;
                return null;
            }
            case "torch.uint8":
            case "torch.int8":
                for (int i = 0; i < span.Length; i++)
                    span[i] = (byte)-span[i];
                return null;
            case "torch.int16":
                for (int at = 0; at < span.Length; at += 2)
                    BinaryPrimitives.WriteInt16LittleEndian(span[at..], (short)-BinaryPrimitives.ReadInt16LittleEndian(span[at..]));
                return null;
            case "torch.int32":
                for (int at = 0; at < span.Length; at += 4)
                    BinaryPrimitives.WriteInt32LittleEndian(span[at..], unchecked(-BinaryPrimitives.ReadInt32LittleEndian(span[at..])));
                return null;
            case "torch.int64":
                for (int at = 0; at < span.Length; at += 8)
                    BinaryPrimitives.WriteInt64LittleEndian(span[at..], unchecked(-BinaryPrimitives.ReadInt64LittleEndian(span[at..])));
                return null;
            default:
                return $"cannot be read by torch.load either (negation is not implemented for {dtype.Name}), so the file is refused";
        }
    }

    private static bool AnyPart(ReadOnlySpan<byte> span, int part, Func<ReadOnlySpan<byte>, bool> test)
    {
        for (int at = 0; at < span.Length; at += part)
        {
            if (test(span.Slice(at, part)))
                return true;
        }
        return false;
    }

    private static bool IsZeroOrNaN32(ReadOnlySpan<byte> p)
    {
        float v = BinaryPrimitives.ReadSingleLittleEndian(p);
        return v == 0 || float.IsNaN(v);
    }

    private static bool IsZeroOrNaN64(ReadOnlySpan<byte> p)
    {
        double v = BinaryPrimitives.ReadDoubleLittleEndian(p);
        return v == 0 || double.IsNaN(v);
    }
}
