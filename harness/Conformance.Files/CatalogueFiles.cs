using System.Text.Json.Nodes;

namespace Conformance.Files;

/// <summary>
/// The suite's data files shared by every side: <c>cases.json</c> (the case catalogue) and
/// <c>dtypes.json</c> (the dtype table), in <c>python/torchconformance/catalogue/</c> so that the
/// Python package also works standalone (gpu-check). Found by walking up from this assembly's
/// folder, then from the working directory, to the checkout that holds them: the TorchSharp worker
/// runs inside a rootfs with the checkout bind-mounted at the same path, so the walk finds the same
/// files there. <c>CONFORMANCE_CATALOGUE</c> names another folder; <c>CONFORMANCE_REPO</c> (as for
/// RepoLayout) another checkout.
/// </summary>
public static class CatalogueFiles
{
    /// <summary>Where the files live, relative to the repository root.</summary>
    public const string RelativeDirectory = "python/torchconformance/catalogue";

    private static readonly Lazy<string> Located = new(Locate);
    private static readonly Dictionary<string, JsonObject> Cache = [];

    /// <summary>The folder holding cases.json and dtypes.json.</summary>
    public static string Directory => Located.Value;

    /// <summary>A "//" key is an explanation for people, never data.</summary>
    public static bool IsComment(string key) => key.StartsWith("//", StringComparison.Ordinal);

    /// <summary>The entries of an object, without its "//" explanations, in file order.</summary>
    public static IEnumerable<KeyValuePair<string, JsonNode?>> Entries(JsonNode? node) =>
        (node as JsonObject ?? []).Where(kv => !IsComment(kv.Key));

    /// <summary>One of the files, parsed once per process (callers must not change it).</summary>
    public static JsonObject Read(string fileName)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(fileName, out var cached)) return cached;
            var path = Path.Combine(Directory, fileName);
            var parsed = JsonNode.Parse(File.ReadAllText(path), documentOptions: new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip }) as JsonObject
                         ?? throw new InvalidDataException($"{path}: expected a JSON object");
            Cache[fileName] = parsed;
            return parsed;
        }
    }

    private static string Locate()
    {
        var overridden = Environment.GetEnvironmentVariable("CONFORMANCE_CATALOGUE");
        if (!string.IsNullOrEmpty(overridden))
            return File.Exists(Path.Combine(overridden, "cases.json"))
                ? Path.GetFullPath(overridden)
                : throw new FileNotFoundException($"CONFORMANCE_CATALOGUE={overridden} holds no cases.json");
        var repo = Environment.GetEnvironmentVariable("CONFORMANCE_REPO");
        if (!string.IsNullOrEmpty(repo))
            return File.Exists(Path.Combine(repo, RelativeDirectory, "cases.json"))
                ? Path.GetFullPath(Path.Combine(repo, RelativeDirectory))
                : throw new FileNotFoundException($"CONFORMANCE_REPO={repo} holds no {RelativeDirectory}/cases.json");
        foreach (var start in new[] { AppContext.BaseDirectory, System.IO.Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, RelativeDirectory);
                if (File.Exists(Path.Combine(candidate, "cases.json"))) return candidate;
            }
        throw new FileNotFoundException(
            $"the case catalogue ({RelativeDirectory}/cases.json) is in none of these folders or their parents: {AppContext.BaseDirectory}, " +
            $"{System.IO.Directory.GetCurrentDirectory()}; run from the checkout, or set CONFORMANCE_CATALOGUE to the folder that holds it");
    }
}
