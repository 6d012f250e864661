using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Diagnosis;

/// <summary>
/// Where the doctor looks. <see cref="FromEnvironment"/> gives what discovery would use; tests point
/// the paths elsewhere (a rootfs that does not exist, a synthetic libstdc++).
/// </summary>
public sealed record DoctorOptions(
    string Rootfs,
    string? HostLibStdCxx,
    IReadOnlyList<string> Pythons,
    string? TorchSharpNative = null,
    string MountsFile = "/proc/mounts")
{
    /// <summary>The rootfs environments.json declares beside the TorchSharp one (forky: PyTorch 2.14).</summary>
    public IReadOnlyList<RuntimeEnvironment> OtherRootfs { get; init; } = [];

    public static DoctorOptions FromEnvironment(RepoLayout repo)
    {
        RuntimesConfig config;
        try { config = RuntimesConfig.Load(repo.RuntimesFile, Environment.GetEnvironmentVariable("CONFORMANCE_RUNTIMES")); }
        catch (Exception e) when (e is IOException or FormatException or System.Text.Json.JsonException) { config = RuntimesConfig.Empty; }
        var pythons = (Environment.GetEnvironmentVariable("CONFORMANCE_PYTHON") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(config.Pythons).Concat(Discovery.HostPythonCandidates())
            .Distinct().ToList();
        var rootfs = Environment.GetEnvironmentVariable("CONFORMANCE_ROOTFS") ?? config.Rootfs ?? Discovery.DefaultRootfs;
        return new DoctorOptions(rootfs, Doctor.LibStdCxxIn("/"), pythons)
        {
            OtherRootfs = RuntimeEnvironment.Load(repo.EnvironmentsFile).Where(e => e.IsRootfs && e.Id != "trixie" && e.Path is not null).ToList(),
        };
    }
}
