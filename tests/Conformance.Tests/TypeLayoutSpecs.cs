using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

/// <summary>
/// File names show the types: under harness/, each file holds one top-level type named after it (a
/// partial class may span <c>Type.Part.cs</c> files), and no two public types share a name.
/// </summary>
[Trait("Category", "unit")]
public sealed partial class TypeLayoutSpecs
{
    /// <summary>
    /// Files allowed more than one type, each with its reason. The model zoo is the twin of
    /// python/torchconformance/models.py: one file each, side by side, so the two diff by eye.
    /// </summary>
    private static readonly Dictionary<string, string> Exempt = new()
    {
        ["Conformance.Workers.TorchSharp/Models/Zoo.cs"] = "the C# twin of models.py, kept as one file like it",
    };

    [GeneratedRegex(@"^(?:\[[^\]\n]*\]\s*)*(?:(?:public|internal|file)\s+)?(?:(?:sealed|static|abstract|partial|readonly|unsafe)\s+)*(?:class|record(?:\s+struct)?|struct|interface|enum)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    private static IEnumerable<(string File, string Text)> Sources()
    {
        var dir = Path.Combine(RepoLayout.Find().Root, "harness");
        return Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(f => (Path.GetRelativePath(dir, f), File.ReadAllText(f)));
    }

    private static List<(string Name, bool Public, bool Partial)> Types(string text) =>
        TopLevelType().Matches(text).Select(m => (m.Groups[1].Value, m.Value.Contains("public ", StringComparison.Ordinal), m.Value.Contains("partial ", StringComparison.Ordinal))).ToList();

    [Fact]
    public void Every_file_holds_one_top_level_type_named_after_it()
    {
        var wrong = new List<string>();
        foreach (var (file, text) in Sources())
        {
            if (Exempt.ContainsKey(file)) continue;
            var types = Types(text);
            var stem = Path.GetFileNameWithoutExtension(file).Split('.')[0];
            if (types.Count > 1) wrong.Add($"{file}: {types.Count} types ({string.Join(", ", types.Select(t => t.Name))})");
            else if (types.Count == 1 && types[0].Name != stem) wrong.Add($"{file}: holds {types[0].Name}");
        }
        Assert.True(wrong.Count == 0, "one top-level type per file, named after it:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void No_two_public_types_share_a_name()
    {
        var byName = Sources().SelectMany(s => Types(s.Text).Where(t => t.Public).Select(t => (t.Name, t.Partial, s.File)))
            .GroupBy(t => t.Name)
            .Where(g => g.Count(t => !t.Partial) > 1 || (g.Any(t => t.Partial) && g.Select(t => t.File.Split('/')[0]).Distinct().Count() > 1))
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(t => t.File))}").ToList();
        Assert.True(byName.Count == 0, "public types that share a name:\n" + string.Join("\n", byName));
    }
}
