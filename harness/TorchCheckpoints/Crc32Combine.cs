namespace TorchCheckpoints;

/// <summary>
/// CRC-32 (the zip polynomial) of a concatenation from the CRCs of its parts, so that a record can be
/// read or written in segments on several threads and still be checked against one zip CRC. The
/// CRCs themselves come from System.IO.Hashing; this is the GF(2) operator that appends
/// <c>length</c> zero bytes, applied by repeated squaring (log2(length) steps).
/// </summary>
internal static class Crc32Combine
{
    private const uint Polynomial = 0xEDB88320; // reflected 0x04C11DB7

    /// <summary>CRC-32 of A followed by B, from crc(A), crc(B) and B's length.</summary>
    public static uint Combine(uint crcA, uint crcB, long lengthB)
    {
        if (lengthB <= 0)
            return crcA;
        Span<uint> odd = stackalloc uint[32];  // the operator for one zero bit, then for 4, 16, ... bits
        Span<uint> even = stackalloc uint[32]; // for 2, 8, 32, ... bits
        odd[0] = Polynomial;
        uint row = 1;
        for (int n = 1; n < 32; n++, row <<= 1)
            odd[n] = row;
        Square(even, odd); // 2 bits
        Square(odd, even); // 4 bits
        // Each round squares once more (a zero byte is 8 bits) and applies the operator for each set bit of lengthB.
        while (true)
        {
            Square(even, odd);
            if ((lengthB & 1) != 0)
                crcA = Times(even, crcA);
            lengthB >>= 1;
            if (lengthB == 0)
                break;
            Square(odd, even);
            if ((lengthB & 1) != 0)
                crcA = Times(odd, crcA);
            lengthB >>= 1;
            if (lengthB == 0)
                break;
        }
        return crcA ^ crcB;
    }

    private static uint Times(ReadOnlySpan<uint> matrix, uint vector)
    {
        uint sum = 0;
        for (int i = 0; vector != 0; i++, vector >>= 1)
        {
            if ((vector & 1) != 0)
                sum ^= matrix[i];
        }
        return sum;
    }

    private static void Square(Span<uint> square, ReadOnlySpan<uint> matrix)
    {
        for (int n = 0; n < 32; n++)
            square[n] = Times(matrix, matrix[n]);
    }
}
