using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;

namespace Conformance.Orchestrator.Reports;

/// <summary>The machine a run ran on, recorded so that two runs can be compared (`conformance compare`).</summary>
public static class Machine
{
    public static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? RuntimeInformation.ProcessArchitecture.ToString() : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }

    public static JsonObject Environment(RunnerOptions? options) => new()
    {
        ["machine"] = new JsonObject
        {
            ["cpu_model"] = CpuModel(),
            // The cores this process may run on (taskset narrows it), and the machine's.
            ["cores"] = System.Environment.ProcessorCount,
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = System.Environment.Version.ToString(),
        },
        ["threads"] = options is null ? null : new JsonObject { ["intra_op"] = options.Threads, ["inter_op"] = options.InteropThreads },
        ["timeout_seconds"] = options?.RequestTimeout.TotalSeconds,
        ["start_timeout_seconds"] = options?.StartTimeout.TotalSeconds,
    };
}
