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

/// <summary>How a large record is split across threads when it is read or written whole.</summary>
internal static class Segments
{
    /// <summary>Records smaller than this are done on one thread.</summary>
    public const long ParallelThreshold = 16L << 20;

    /// <summary>Bytes per I/O call within a segment.</summary>
    public const int Chunk = 4 << 20;

    /// <summary>Threads for one record: the processor count, at most 8, and at least 8 MiB each.</summary>
    public static int For(long length) =>
        length < ParallelThreshold ? 1 : (int)Math.Clamp(Math.Min(Environment.ProcessorCount, length / (8L << 20)), 1, 8);

    /// <summary>Segment <paramref name="index"/> of <paramref name="count"/> over <paramref name="length"/> bytes, page-aligned.</summary>
    public static (long Start, long Length) Bounds(long length, int count, int index)
    {
        long size = (length / count + 4095) & ~4095L;
        long start = Math.Min(length, size * index);
        return (start, Math.Min(length, start + size) - start);
    }

    /// <summary>Runs <paramref name="action"/> on every item, on all cores; the first failure is rethrown as itself.</summary>
    public static void ForEach<T>(IReadOnlyList<T> items, Action<T> action)
    {
        if (items.Count <= 1 || Environment.ProcessorCount == 1)
        {
            foreach (var item in items)
                action(item);
            return;
        }
        try
        {
            Parallel.ForEach(items, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(Environment.ProcessorCount, 8) }, action);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Runs <paramref name="segment"/> on each part and combines their CRCs in order.</summary>
    public static uint Run(long length, Func<long, long, uint> segment)
    {
        int count = For(length);
        if (count == 1)
            return segment(0, length);
        var crcs = new uint[count];
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = count }, i =>
            {
                var (start, size) = Bounds(length, count, i);
                crcs[i] = segment(start, size);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        uint crc = crcs[0];
        for (int i = 1; i < count; i++)
            crc = Crc32Combine.Combine(crc, crcs[i], Bounds(length, count, i).Length);
        return crc;
    }
}
