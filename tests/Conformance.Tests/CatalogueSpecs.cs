using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Files;

namespace Conformance.Tests;

/// <summary>
/// The case catalogue (python/torchconformance/catalogue/cases.json) is data; the models are twins,
/// code on each side keyed by builder name (models.BUILDERS ⇄ Zoo.Builders). Each side lists its
/// builders itself (<c>python3 -m torchconformance builders</c>, <c>Conformance.Workers.TorchSharp
/// builders</c>, neither touching libtorch's kernels), so a twin added, renamed or dropped on one side
/// only fails here, naming it, before any matrix runs.
/// </summary>
[Trait("Category", "runtime")]
public sealed class CatalogueSpecs
{
    private static readonly RepoLayout Repo = RepoLayout.Find();
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private static IReadOnlyList<string> Lines(string what, (int Code, string Stdout, string Stderr) r)
    {
        Assert.True(r.Code == 0, $"{what} exited {r.Code}: {r.Stderr}");
        return r.Stdout.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
    }

    private static IReadOnlyList<string> PythonBuilders() =>
        Lines("python3 -m torchconformance builders",
            Discovery.Run([PythonCodecSpecs.HostPython(), "-m", "torchconformance", "builders"], Timeout, ("PYTHONPATH", Repo.PythonPackageDir)));

    private static IReadOnlyList<string> TorchSharpBuilders()
    {
        var worker = Repo.TorchSharpWorkers().FirstOrDefault()
                     ?? throw new InvalidOperationException("no TorchSharp worker is built: run make build");
        return Lines($"dotnet {worker.Dll} builders", Discovery.Run(["dotnet", worker.Dll, "builders"], Timeout));
    }

    [SkippableFact(Timeout = 240_000)]
    public async Task Every_model_the_catalogue_names_has_a_twin_on_both_sides_and_no_twin_stands_alone()
    {
        var named = Catalogue.BuilderNames();
        var (python, csharp) = await Task.Run(() => (PythonBuilders(), TorchSharpBuilders()));
        var problems = new List<string>();
        foreach (var n in named.Except(python)) problems.Add($"the catalogue names '{n}', which python/torchconformance/models.py BUILDERS lacks");
        foreach (var n in named.Except(csharp)) problems.Add($"the catalogue names '{n}', which Models/Zoo.cs Zoo.Builders lacks");
        foreach (var n in python.Except(csharp)) problems.Add($"'{n}' is a Python twin only: Zoo.Builders has no '{n}'");
        foreach (var n in csharp.Except(python)) problems.Add($"'{n}' is a C# twin only: models.BUILDERS has no '{n}'");
        foreach (var n in python.Union(csharp).Except(named)) problems.Add($"'{n}' is a builder no case of {CatalogueFiles.RelativeDirectory}/cases.json names");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        // Twins in the same order, so a reader can diff them by eye.
        Assert.Equal(python, csharp);
    }

    [Fact]
    public void Every_case_in_the_catalogue_is_complete_and_names_only_what_exists()
    {
        var doc = CatalogueFiles.Read("cases.json");
        var routes = CatalogueFiles.Entries(doc["routes"]).Select(r => r.Key).ToHashSet();
        var optimizers = Catalogue.Optimizers.Concat(Catalogue.Schedulers).Append("gan").ToHashSet();
        Assert.Equal(Catalogue.All.Count, Catalogue.All.Select(c => c.Name).Distinct().Count());
        foreach (var c in Catalogue.All)
        {
            Assert.False(string.IsNullOrWhiteSpace(c.Description), $"{c.Name}: no description");
            Assert.NotEmpty(c.Routes);
            Assert.All(c.Routes, r => Assert.Contains(r, routes));
            if (c.IsCheckpoint) Assert.Contains(c.Optimizer!, optimizers);
            // A partial-load or shape-mismatch expectation needs the variant the consumer loads into.
            if (c.Partial is not null) Assert.True(c.Variants.ContainsKey(Catalogue.StrictFalse), $"{c.Name}: partial_load without a strict_false variant");
            if (c.Mismatch is not null) Assert.True(c.Variants.ContainsKey(Catalogue.ShapeMismatchMode), $"{c.Name}: shape_mismatch without a shape_mismatch variant");
        }
    }

    [Fact]
    public void Every_committed_fixture_is_named_case_route_and_its_routes_extension_from_the_catalogue()
    {
        // One table for the orchestrator and gpu-check (gpu_check.extension reads the same field); a
        // fixture named otherwise would never be found by the golden runs.
        var problems = new List<string>();
        var cases = Catalogue.All.Select(c => c.Name).ToHashSet();
        var seen = 0;
        foreach (var set in Directory.GetDirectories(Repo.FixturesDir))
            foreach (var entry in Directory.EnumerateFileSystemEntries(set))
            {
                var name = Path.GetFileName(entry);
                if (name.EndsWith(".json") || name.EndsWith(".md") || name.Contains(".source.")) continue;
                var parts = name.Split('.');
                if (parts.Length != 3 || !cases.Contains(parts[0])) { problems.Add($"{entry}: not <case>.<route>.<ext>"); continue; }
                string expected;
                try { expected = Catalogue.ExtensionOf(parts[1]); }
                catch (ArgumentException e) { problems.Add($"{entry}: {e.Message}"); continue; }
                if ("." + parts[2] != expected) problems.Add($"{entry}: route {parts[1]}'s artifact ends with {expected}, not .{parts[2]}");
                var folder = RealLayouts.IsFolder(parts[1]);
                if (folder != Directory.Exists(entry)) problems.Add($"{entry}: {(folder ? $"route {parts[1]}'s artifact is a folder" : $"route {parts[1]}'s artifact is a file, not a folder")}");
                seen++;
            }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(seen >= 400, $"only {seen} fixtures were looked at");
        Assert.Throws<ArgumentException>(() => Catalogue.ExtensionOf("no_such_route"));
    }

    [Fact]
    public void The_codec_dtypes_are_the_dtype_table_entries_with_a_storage_class()
    {
        var table = CatalogueFiles.Read("dtypes.json")["dtypes"]!.AsArray()
            .Where(d => d!["storage_class"] is not null)
            .Select(d => (d!["storage_class"]!.GetValue<string>(), d["torch"]!.GetValue<string>(), d["element_size"]!.GetValue<int>()))
            .ToList();
        Assert.Equal(table, TorchCheckpoints.TorchDtype.All.Select(d => (d.StorageClass, d.Name, d.ElementSize)).ToList());
    }
}
