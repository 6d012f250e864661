namespace Conformance.Orchestrator.Runtimes;

/// <summary>Where the repository's parts are: found by walking up to <c>Conformance.sln</c>.</summary>
public sealed record RepoLayout(string Root)
{
    public static RepoLayout Find(string? start = null)
    {
        var env = Environment.GetEnvironmentVariable("CONFORMANCE_REPO");
        if (!string.IsNullOrEmpty(env)) return new RepoLayout(Path.GetFullPath(env));
        var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Conformance.sln")))
            dir = dir.Parent;
        return dir is null
            ? throw new DirectoryNotFoundException($"no Conformance.sln above {start ?? AppContext.BaseDirectory}; set CONFORMANCE_REPO")
            : new RepoLayout(dir.FullName);
    }

    public string PythonPackageDir => Path.Combine(Root, "python");
    public string KnownFailuresFile => Path.Combine(Root, "known-failures.json");
    public string RuntimesFile => Path.Combine(Root, "runtimes.json");
    public string EnvironmentsFile => Path.Combine(Root, "environments.json");
    public string ArtifactsDir => Path.Combine(Root, "artifacts");
    public string ReportsDir => Path.Combine(Root, "reports");
    /// <summary>fixtures/, or CONFORMANCE_FIXTURES: a folder of fixture sets to consume instead (a set brought back by gpu-check, before it is committed).</summary>
    public string FixturesDir => Environment.GetEnvironmentVariable("CONFORMANCE_FIXTURES") is { Length: > 0 } dir ? Path.GetFullPath(dir) : Path.Combine(Root, "fixtures");

    /// <summary>
    /// The built worker assembly for <paramref name="project"/>, e.g. Conformance.Workers.TorchSharp.
    /// Prefers CONFORMANCE_CONFIGURATION, else the most recently built configuration.
    /// </summary>
    public string? WorkerDll(string project)
    {
        var bin = Path.Combine(Root, "harness", project, "bin");
        return Configurations
            .Select(c => Path.Combine(bin, c, "net10.0", project + ".dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }

    public const string TorchSharpWorker = "Conformance.Workers.TorchSharp";
    public const string TorchSharpBuildPrefix = "torchsharp-";

    /// <summary>
    /// Every built TorchSharp worker: one per <c>bin/&lt;configuration&gt;/torchsharp-&lt;package version&gt;/</c>
    /// (Directory.Build.props), so two TorchSharp versions built side by side are two runtimes. Where a
    /// version is built in both configurations, CONFORMANCE_CONFIGURATION or the newer build wins.
    /// </summary>
    public IReadOnlyList<TorchSharpBuild> TorchSharpWorkers()
    {
        var bin = Path.Combine(Root, "harness", TorchSharpWorker, "bin");
        return Configurations
            .Select(c => Path.Combine(bin, c))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.GetDirectories(d, TorchSharpBuildPrefix + "*"))
            .Select(d => new TorchSharpBuild(Path.GetFileName(d)[TorchSharpBuildPrefix.Length..], Path.Combine(d, "net10.0", TorchSharpWorker + ".dll")))
            .Where(b => File.Exists(b.Dll))
            .GroupBy(b => b.PackageVersion, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(b => File.GetLastWriteTimeUtc(b.Dll)).First())
            .OrderBy(b => b.PackageVersion, StringComparer.Ordinal)
            .ToList();
    }

    private static string[] Configurations =>
        Environment.GetEnvironmentVariable("CONFORMANCE_CONFIGURATION") is { } wanted ? [wanted] : ["Release", "Debug"];
}
