using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// Deterministic inputs that both runtimes compute bit-identically; twin of
/// python/torchconformance/worker/data.py. No RNG: an integer expression divided in float64 (correctly
/// rounded everywhere), then rounded to float32.
/// </summary>
public static class Data
{
    public static Tensor Pattern(long[] shape, long salt)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[n];
        for (long i = 0; i < n; i++)
            values[i] = (float)((double)((i * 7919 + salt * 104729) % 2001 - 1000) / 1000.0);
        return tensor(values, shape, ScalarType.Float32);
    }

    /// <summary>int64 token ids (i * 7919 + salt * 104729) % vocab.</summary>
    public static Tensor Tokens(long[] shape, long vocab, long salt)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var values = new long[n];
        for (long i = 0; i < n; i++) values[i] = (i * 7919 + salt * 104729) % vocab;
        return tensor(values, shape, ScalarType.Int64);
    }

    public static Tensor Labels(long n, long classes, long salt)
    {
        var values = new long[n];
        for (long i = 0; i < n; i++) values[i] = (i * 7 + salt) % classes;
        return tensor(values, new[] { n }, ScalarType.Int64);
    }
}