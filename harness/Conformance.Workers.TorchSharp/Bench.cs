using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchCheckpoints;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// The TorchSharp side of <c>make bench</c>: this project's codec (and, for reference, PyBridge's
/// save_py/load_py) on a large state dict, timed in this process. Peak memory is the resident-set
/// high-water mark (VmHWM, reset through /proc/self/clear_refs) above the RSS at the start.
/// </summary>
public static class Bench
{
    public static JsonObject Run(string dir, int tensors, long elements, int repeats, bool pybridge = true)
    {
        manual_seed(0);
        var sd = new PyDict(ordered: true);
        var module = new ParameterHolder();
        for (int i = 0; i < tensors; i++)
        {
            var t = randn(elements);
            sd.Add($"layer{i}.weight", t);
            module.Add($"layer{i}", t);
        }
        var codecPath = Path.Combine(dir, "bench-codec.pt");
        var pybridgePath = Path.Combine(dir, "bench-pybridge.pt");
        var plainPath = Path.Combine(dir, "bench-plain.bin");
        try
        {
            var save = Measure(() => TorchCheckpoint.Save(codecPath, sd), repeats);
            var size = new FileInfo(codecPath).Length;
            var load = Measure(() => Dispose(TorchCheckpoint.Load(codecPath)), repeats);
            var mapped = Measure(() => Dispose(Touch(TorchCheckpoint.LoadMapped(codecPath, verifyCrc: true))), repeats);
            var mappedNoCrc = Measure(() => Dispose(Touch(TorchCheckpoint.LoadMapped(codecPath, verifyCrc: false))), repeats);
            var result = new JsonObject
            {
                ["runtime"] = "TorchSharp " + typeof(torch).Assembly.GetName().Version,
                ["file_bytes"] = size,
                ["save"] = save,
                ["load"] = load,
                ["load_mmap_touch"] = mapped,
                ["load_mmap_nocrc_touch"] = mappedNoCrc,
                ["limits"] = Limits(codecPath, plainPath, size, repeats),
            };
            if (pybridge)
            {
                // PyBridge, once: its save_py deflates every entry and is an order of magnitude slower.
                result["pybridge_save"] = Measure(() => module.save_py(pybridgePath), 1);
                result["pybridge_load"] = Measure(() => module.load_py(pybridgePath), 1);
                result["pybridge_file_bytes"] = new FileInfo(pybridgePath).Length;
            }
            return result;
        }
        finally
        {
            File.Delete(codecPath);
            File.Delete(pybridgePath);
            File.Delete(plainPath);
        }
    }

    /// <summary>
    /// What the machine allows for the same bytes, measured in the same process: a plain read of the
    /// codec's file from the page cache (one thread, 4 MiB reads), the same on all cores, a plain
    /// write of as many bytes with and without fsync, and memcpy of as many bytes into fresh memory.
    /// </summary>
    private static unsafe JsonObject Limits(string file, string plain, long size, int repeats)
    {
        const int chunk = 4 << 20;
        var buffer = new byte[chunk];
        new Random(1).NextBytes(buffer);
        void Read(int threads) => Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            using var handle = File.OpenHandle(file);
            var local = new byte[chunk];
            long part = (size + threads - 1) / threads;
            for (long offset = t * part; offset < Math.Min(size, (t + 1) * part); offset += chunk)
                RandomAccess.Read(handle, local.AsSpan(0, (int)Math.Min(chunk, Math.Min(size, (t + 1) * part) - offset)), offset);
        });
        void Write(bool fsync)
        {
            using var stream = new FileStream(plain, FileMode.Create, FileAccess.Write, FileShare.None, 1);
            for (long offset = 0; offset < size; offset += chunk)
                RandomAccess.Write(stream.SafeFileHandle, buffer.AsSpan(0, (int)Math.Min(chunk, size - offset)), offset);
            if (fsync) stream.Flush(flushToDisk: true);
        }
        void Copy()
        {
            using var destination = empty(size, ScalarType.Byte);
            var to = (byte*)TorchSharpTensors.FirstElementPointer(destination);
            fixed (byte* from = buffer)
                for (long offset = 0; offset < size; offset += chunk)
                    Buffer.MemoryCopy(from, to + offset, size - offset, Math.Min(chunk, size - offset));
        }
        return new JsonObject
        {
            ["read_page_cache"] = Measure(() => Read(1), repeats),
            ["read_page_cache_all_cores"] = Measure(() => Read(Environment.ProcessorCount), repeats),
            ["write_page_cache"] = Measure(() => Write(fsync: false), repeats),
            ["write_fsync"] = Measure(() => Write(fsync: true), repeats),
            ["memcpy_fresh_memory"] = Measure(Copy, repeats),
            ["cores"] = Environment.ProcessorCount,
        };
    }

    /// <summary>Reads every element of every tensor (a sum), so a mapped load pays for its pages.</summary>
    private static object? Touch(object? value)
    {
        if (value is PyDict d)
            foreach (var (_, v) in d)
                if (v is Tensor t) t.sum().Dispose();
        return value;
    }

    private static void Dispose(object? value)
    {
        if (value is PyDict d) foreach (var (_, v) in d) (v as Tensor)?.Dispose();
    }

    private static JsonObject Measure(Action action, int repeats)
    {
        var times = new List<double>();
        long peak = 0;
        for (int r = 0; r < repeats; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            File.WriteAllText("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
            long start = Kib("VmRSS");
            var clock = Stopwatch.StartNew();
            action();
            times.Add(clock.Elapsed.TotalSeconds);
            peak = Math.Max(peak, (Kib("VmHWM") - start) * 1024);
        }
        times.Sort();
        return new JsonObject { ["seconds"] = times[times.Count / 2], ["peak_bytes"] = peak };
    }

    private static long Kib(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }

    /// <summary>A module whose state dict is the benchmark's tensors, for PyBridge's module-level API.</summary>
    private sealed class ParameterHolder() : nn.Module("bench")
    {
        public void Add(string name, Tensor t) => register_buffer(name, t);
    }
}
