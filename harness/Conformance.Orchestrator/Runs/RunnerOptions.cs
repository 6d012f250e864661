using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Runs;

/// <summary>
/// How a run behaves: where artifacts go, the timeouts, and the thread counts pinned in every worker
/// (libtorch's results change with them). Settings, not constants: <see cref="FromEnvironment"/>
/// reads CONFORMANCE_TIMEOUT, CONFORMANCE_START_TIMEOUT (seconds), CONFORMANCE_THREADS and
/// CONFORMANCE_INTEROP_THREADS; the CLI's --timeout and --threads override them.
/// </summary>
/// <param name="Parallel">Run different runtimes' requests at the same time (one lane per runtime); tests that stage faults run sequentially.</param>
public sealed record RunnerOptions(string ArtifactsDir, TimeSpan RequestTimeout, TimeSpan StartTimeout, long Seed = 0, int Threads = 1, int InteropThreads = 1, bool Parallel = true)
{
    public static RunnerOptions FromEnvironment(string artifactsDir)
    {
        static double Env(string name, double fallback) =>
            double.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;
        return new(artifactsDir, TimeSpan.FromSeconds(Env("CONFORMANCE_TIMEOUT", 120)), TimeSpan.FromSeconds(Env("CONFORMANCE_START_TIMEOUT", 180)),
            Threads: (int)Env("CONFORMANCE_THREADS", 1), InteropThreads: (int)Env("CONFORMANCE_INTEROP_THREADS", 1));
    }

    /// <summary>What every worker gets in its environment.</summary>
    public IReadOnlyDictionary<string, string> WorkerEnvironment => new Dictionary<string, string>
    {
        ["CONFORMANCE_THREADS"] = Threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CONFORMANCE_INTEROP_THREADS"] = InteropThreads.ToString(System.Globalization.CultureInfo.InvariantCulture),
        // OpenMP and MKL read these before libtorch's own setting applies.
        ["OMP_NUM_THREADS"] = Threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["MKL_NUM_THREADS"] = Threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
