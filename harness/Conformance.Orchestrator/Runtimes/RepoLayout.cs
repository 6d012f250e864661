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
    public string ArtifactsDir => Path.Combine(Root, "artifacts");
    public string ReportsDir => Path.Combine(Root, "reports");
    public string FixturesDir => Path.Combine(Root, "fixtures");

    /// <summary>
    /// The built worker assembly for <paramref name="project"/>, e.g. Conformance.Workers.TorchSharp.
    /// Prefers CONFORMANCE_CONFIGURATION, else the most recently built configuration.
    /// </summary>
    public string? WorkerDll(string project)
    {
        var bin = Path.Combine(Root, "harness", project, "bin");
        var wanted = Environment.GetEnvironmentVariable("CONFORMANCE_CONFIGURATION");
        var configs = wanted is not null ? new[] { wanted } : new[] { "Release", "Debug" };
        return configs
            .Select(c => Path.Combine(bin, c, "net10.0", project + ".dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }
}
