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
    public static JsonObject Run(string dir, int tensors, long elements, int repeats)
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
        try
        {
            var save = Measure(() => TorchCheckpoint.Save(codecPath, sd), repeats);
            var size = new FileInfo(codecPath).Length;
            var load = Measure(() => Dispose(TorchCheckpoint.Load(codecPath)), repeats);
            // PyBridge, once: its save_py deflates every entry and is an order of magnitude slower.
            var pySave = Measure(() => module.save_py(pybridgePath), 1);
            var pyLoad = Measure(() => module.load_py(pybridgePath), 1);
            return new JsonObject
            {
                ["runtime"] = "TorchSharp " + typeof(torch).Assembly.GetName().Version,
                ["file_bytes"] = size,
                ["save"] = save,
                ["load"] = load,
                ["pybridge_file_bytes"] = new FileInfo(pybridgePath).Length,
                ["pybridge_save"] = pySave,
                ["pybridge_load"] = pyLoad,
            };
        }
        finally
        {
            File.Delete(codecPath);
            File.Delete(pybridgePath);
        }
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
