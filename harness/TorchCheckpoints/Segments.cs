namespace TorchCheckpoints;

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
