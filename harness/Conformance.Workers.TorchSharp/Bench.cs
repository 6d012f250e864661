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
/// high-water mark (VmHWM, reset through /proc/self/clear_refs) above the RSS at the start. The
/// steps pair with the PyTorch worker's (python/torchconformance/worker/bench.py): a durable save
/// (fsync of the file, as torch.save + os.fsync), a save without fsync (as torch.save), a load, and
/// a mapped load with its CRC check + reading every tensor once (as torch.load(mmap=True) + the same).
/// </summary>
public static class Bench
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "sync")]
    private static extern void Sync();

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
            void Remove() => File.Delete(codecPath);
            WarmUp(dir);
            var saveDurable = Measure(() => TorchCheckpoint.Save(codecPath, sd, durable: true), repeats, Remove);
            var save = Measure(() => TorchCheckpoint.Save(codecPath, sd, durable: false), repeats, Remove);
            var size = new FileInfo(codecPath).Length;
            var load = Measure(() => Dispose(TorchCheckpoint.Load(codecPath).Value), repeats);
            var mapped = Measure(() => Dispose(Touch(TorchCheckpoint.LoadMapped(codecPath, verifyCrc: true).Value)), repeats);
            var mappedNoCrc = Measure(() => Dispose(Touch(TorchCheckpoint.LoadMapped(codecPath, verifyCrc: false).Value)), repeats);
            var result = new JsonObject
            {
                ["runtime"] = "TorchSharp " + typeof(torch).Assembly.GetName().Version,
                ["file_bytes"] = size,
                ["save"] = save,
                ["save_durable"] = saveDurable,
                ["load"] = load,
                ["load_mmap_touch"] = mapped,
                ["load_mmap_nocrc_touch"] = mappedNoCrc,
                ["crc_checked"] = CrcChecked(dir),
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

    /// <summary>Each step once, untimed, on a one-tensor file: the JIT and first-call costs are paid
    /// before the clock starts (the PyTorch worker warms its steps up the same way).</summary>
    private static void WarmUp(string dir)
    {
        var path = Path.Combine(dir, "bench-warmup.pt");
        try
        {
            var tiny = new PyDict(ordered: true) { { "w", randn(16) } };
            TorchCheckpoint.Save(path, tiny, durable: true);
            TorchCheckpoint.Save(path, tiny, durable: false);
            Dispose(TorchCheckpoint.Load(path).Value);
            Dispose(Touch(TorchCheckpoint.LoadMapped(path, verifyCrc: true).Value));
            Dispose(Touch(TorchCheckpoint.LoadMapped(path, verifyCrc: false).Value));
            Dispose(tiny);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Whether Load and LoadMapped(verifyCrc: true) notice one flipped byte inside a tensor
    /// record: the same probe as the PyTorch worker's, on a small file.</summary>
    private static JsonObject CrcChecked(string dir)
    {
        var path = Path.Combine(dir, "bench-crc.pt");
        TorchCheckpoint.Save(path, new PyDict(ordered: true) { { "w", arange(4096, dtype: ScalarType.Float32) } }, durable: false);
        try
        {
            var bytes = File.ReadAllBytes(path);
            bytes[bytes.AsSpan().IndexOf("data/0"u8) + 300] ^= 0x40; // past the local header and its padding, inside the record
            File.WriteAllBytes(path, bytes);
            bool Refused(Func<object?> load)
            {
                try
                {
                    Dispose(load());
                    return false;
                }
                catch (CheckpointFormatException)
                {
                    return true;
                }
            }
            return new JsonObject
            {
                ["load"] = Refused(() => TorchCheckpoint.Load(path).Value),
                ["load_mmap"] = Refused(() => Touch(TorchCheckpoint.LoadMapped(path, verifyCrc: true).Value)),
            };
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// What the machine allows for the same bytes, measured in the same process: a plain read of the
    /// codec's file from the page cache (one thread, 4 MiB reads), the same on all cores, the same on
    /// all cores into fresh memory (what any load must do at least), a plain write of as many bytes
    /// with and without fsync (a new file each time, as the saves write: the disk's write bandwidth,
    /// as <c>dd conv=fsync</c>), and memcpy of as many bytes into fresh memory.
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
        void ReadFresh(int threads)
        {
            using var destination = empty(size, ScalarType.Byte);
            var to = (byte*)TorchSharpTensors.FirstElementPointer(destination);
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                using var handle = File.OpenHandle(file);
                long part = (size + threads - 1) / threads;
                for (long offset = t * part; offset < Math.Min(size, (t + 1) * part); offset += chunk)
                    RandomAccess.Read(handle, new Span<byte>(to + offset, (int)Math.Min(chunk, Math.Min(size, (t + 1) * part) - offset)), offset);
            });
        }
        void MappedRead(int threads)
        {
            using var map = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(file, FileMode.Open, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
            using var view = map.CreateViewAccessor(0, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            try
            {
                long words = size / 8, part = (words + threads - 1) / threads;
                var from = (long*)(start + view.PointerOffset);
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long sum = 0;
                    for (long i = t * part, end = Math.Min(words, (t + 1) * part); i < end; i++) sum += from[i];
                    GC.KeepAlive(sum);
                });
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
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
            ["mmap_read_all_cores"] = Measure(() => MappedRead(Environment.ProcessorCount), repeats),
            ["read_fresh_memory_all_cores"] = Measure(() => ReadFresh(Environment.ProcessorCount), repeats),
            ["write_page_cache"] = Measure(() => Write(fsync: false), repeats, () => File.Delete(plain)),
            ["write_fsync"] = Measure(() => Write(fsync: true), repeats, () => File.Delete(plain)),
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

    /// <summary>Median seconds and the peak RSS rise; before each run, untimed: <paramref name="before"/>
    /// (a save's target removed, so each save writes a new file) and sync(2), so no earlier step's
    /// dirty pages are written back during this one (the PyTorch worker does the same).</summary>
    private static JsonObject Measure(Action action, int repeats, Action? before = null)
    {
        var times = new List<double>();
        long peak = 0;
        for (int r = 0; r < repeats; r++)
        {
            before?.Invoke();
            Sync();
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
        // As Python's statistics.median (the PyTorch worker's): the middle two averaged for an even count.
        double median = times.Count % 2 == 1 ? times[times.Count / 2] : (times[times.Count / 2 - 1] + times[times.Count / 2]) / 2;
        return new JsonObject { ["seconds"] = median, ["peak_bytes"] = peak };
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
