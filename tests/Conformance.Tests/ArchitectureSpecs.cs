using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

/// <summary>
/// The orchestrator's folders, read from the source: each file's namespace, the namespaces it imports
/// (<c>using</c>, aliases, and names qualified by a sibling namespace such as <c>Judgement.CellJudge</c>),
/// as a graph between the folders.
/// </summary>
internal static partial class NamespaceGraph
{
    public const string Root = "Conformance.Orchestrator";

    /// <summary>
    /// The layers, lowest first: a folder may import only those before it. The root namespace holds only
    /// <c>Suite</c>, the whole job composed (runtimes, ledger, runner), which reports, check and the GPU leg use.
    /// </summary>
    public static readonly string[] Layers =
        ["Vocabulary", "Runtimes", "Workers", "Matrix", "Judgement", "Ledger", "Runs", "(root)", "Reports", "Check", "GpuLeg", "Diagnosis"];

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^\s*(?:global\s+)?using\s+(?:\w+\s*=\s*)?Conformance\.Orchestrator\.(\w+)", RegexOptions.Multiline)]
    private static partial Regex UsingLine();

    [GeneratedRegex(@"^\s*(?:\[[^\]]*\]\s*)*(?:public|internal)\s+(?:(?:sealed|static|abstract|partial|readonly|record)\s+)*(?:class|record|struct|interface|enum)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();

    public static string Layer(string ns) => ns == Root ? "(root)" : ns.StartsWith(Root + ".", StringComparison.Ordinal) ? ns[(Root.Length + 1)..].Split('.')[0] : ns;

    /// <summary>(file, source) pairs of the orchestrator project.</summary>
    public static IReadOnlyList<(string File, string Text)> Sources()
    {
        var dir = Path.Combine(RepoLayout.Find().Root, "harness", "Conformance.Orchestrator");
        return Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Select(f => (Path.GetRelativePath(dir, f), File.ReadAllText(f))).ToList();
    }

    /// <summary>Edges folder → folder, each with one file that makes it, for the message.</summary>
    public static Dictionary<(string From, string To), string> Edges(IReadOnlyList<(string File, string Text)> sources)
    {
        var layerOf = sources.ToDictionary(s => s.File, s => NamespaceLine().Match(s.Text) is { Success: true } m ? Layer(m.Groups[1].Value) : "(none)");
        // Types per folder, for names qualified by a sibling namespace (Judgement.CellJudge) and for the root's types (Suite).
        var types = new Dictionary<string, HashSet<string>>();
        foreach (var (file, text) in sources)
            foreach (Match m in TypeDeclaration().Matches(text))
                (types.TryGetValue(layerOf[file], out var set) ? set : types[layerOf[file]] = []).Add(m.Groups[1].Value);
        var edges = new Dictionary<(string, string), string>();
        foreach (var (file, text) in sources)
        {
            var from = layerOf[file];
            void Add(string to) { if (to != from) edges.TryAdd((from, to), file); }
            foreach (Match m in UsingLine().Matches(text)) Add(m.Groups[1].Value);
            var code = string.Join('\n', text.Split('\n').Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal)));
            foreach (var (layer, names) in types)
            {
                if (layer == from) continue;
                if (layer == "(root)")
                {
                    // A root type used as a type (Suite suite, new Suite(, Suite.X), not a member that shares its name.
                    if (names.Any(n => Regex.IsMatch(code, $@"(?<![\w.]){n}(?:\s+[a-z_]\w*|\.[A-Z]|\()"))) Add(layer);
                }
                else if (names.Any(n => Regex.IsMatch(code, $@"(?<![\w])(?:Conformance\.Orchestrator\.|Orchestrator\.|(?<!\.)){layer}\.{n}\b"))) Add(layer);
            }
        }
        return edges;
    }

    /// <summary>A cycle as "A → B → A", or null.</summary>
    public static string? Cycle(IEnumerable<(string From, string To)> edges)
    {
        var next = edges.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).Order(StringComparer.Ordinal).ToList());
        var state = new Dictionary<string, int>();
        var path = new List<string>();
        string? Visit(string n)
        {
            state[n] = 1;
            path.Add(n);
            foreach (var m in next.GetValueOrDefault(n) ?? [])
            {
                if (state.GetValueOrDefault(m) == 1) return string.Join(" → ", path.SkipWhile(p => p != m).Append(m));
                if (state.GetValueOrDefault(m) == 0 && Visit(m) is { } c) return c;
            }
            path.RemoveAt(path.Count - 1);
            state[n] = 2;
            return null;
        }
        foreach (var n in next.Keys.Order(StringComparer.Ordinal))
            if (state.GetValueOrDefault(n) == 0 && Visit(n) is { } c) return c;
        return null;
    }

    /// <summary>Every edge that points up the layers (or to a folder that is not a layer), with the file that makes it.</summary>
    public static List<string> Upward(Dictionary<(string From, string To), string> edges) =>
        edges.Where(e => Array.IndexOf(Layers, e.Key.To) < 0 || Array.IndexOf(Layers, e.Key.From) < 0 || Array.IndexOf(Layers, e.Key.To) > Array.IndexOf(Layers, e.Key.From))
            .Select(e => $"{e.Key.From} → {e.Key.To} ({e.Value})").Order(StringComparer.Ordinal).ToList();
}

[Trait("Category", "unit")]
public sealed class ArchitectureSpecs
{
    [Fact]
    public void The_orchestrators_folders_depend_on_each_other_one_way_only()
    {
        var edges = NamespaceGraph.Edges(NamespaceGraph.Sources());
        Assert.True(edges.Count > 10, $"only {edges.Count} edges read: is the scanner still finding the usings?");
        var upward = NamespaceGraph.Upward(edges);
        Assert.True(upward.Count == 0, $"cycle {NamespaceGraph.Cycle(edges.Keys) ?? "none"}; imports against the layers (" + string.Join(" ← ", NamespaceGraph.Layers) + "):\n" + string.Join("\n", upward));
        Assert.Null(NamespaceGraph.Cycle(edges.Keys));
        Assert.DoesNotContain(edges.Keys, e => e.From == "Vocabulary");
    }

    [Fact]
    public void A_planted_import_that_closes_a_loop_is_found_with_the_loop_and_its_file()
    {
        var sources = NamespaceGraph.Sources().Append(("Matrix/Planted.cs", "using Conformance.Orchestrator.Reports;\nnamespace Conformance.Orchestrator.Matrix;\n")).ToList();
        var edges = NamespaceGraph.Edges(sources);
        var cycle = NamespaceGraph.Cycle(edges.Keys);
        Assert.NotNull(cycle);
        Assert.Contains("Matrix → Reports", cycle);
        Assert.Contains("Matrix → Reports (Matrix/Planted.cs)", NamespaceGraph.Upward(edges));
    }

    [Fact]
    public void Every_folder_of_the_orchestrator_is_its_namespace()
    {
        foreach (var (file, text) in NamespaceGraph.Sources())
        {
            var folder = Path.GetDirectoryName(file) is { Length: > 0 } d ? $"{NamespaceGraph.Root}.{d.Replace(Path.DirectorySeparatorChar, '.')}" : NamespaceGraph.Root;
            Assert.Contains($"namespace {folder};", text);
        }
    }
}
