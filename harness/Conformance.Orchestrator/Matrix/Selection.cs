using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// Which cells a run was asked for: a cell glob (<c>*</c> within a segment, <c>**</c> across
/// segments), comma-separated globs for case, route, runtime and mode, and a shard <c>i/n</c>.
/// A cell is in a runtime selection when its consumer and its live producer both match (a golden
/// fixture always does): <c>--runtime 'pytorch-*,torchsharp-0.107'</c> is the world before an
/// upgrade, <c>--runtime 'pytorch-*,torchsharp-0.108'</c> the world after. <see cref="Complete"/> when nothing was left out: only a complete run may check
/// the ledger's counts or rewrite it.
/// </summary>
public sealed record Selection(string? Cells = null, string? Case = null, string? Route = null, string? Runtime = null, string? Mode = null, string? Shard = null)
{
    public static Selection All { get; } = new();

    public bool Complete => this == All;

    public (int Index, int Count)? ParsedShard => Shard is null ? null : ParseShard(Shard);

    public static (int Index, int Count) ParseShard(string shard)
    {
        var parts = shard.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], out var i) && int.TryParse(parts[1], out var n) && n >= 1 && i >= 1 && i <= n) return (i, n);
        throw new FormatException($"--shard wants i/n with 1 <= i <= n, e.g. 1/2 (got \"{shard}\")");
    }

    /// <summary>A comma-separated list of globs; commas inside braces belong to the glob (<c>torchscript_{script,trace}</c>).</summary>
    public static IReadOnlyList<string> SplitList(string globs)
    {
        var parts = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i <= globs.Length; i++)
        {
            if (i < globs.Length && globs[i] == '{') depth++;
            else if (i < globs.Length && globs[i] == '}') depth--;
            else if (i == globs.Length || (globs[i] == ',' && depth == 0))
            {
                var part = globs[start..i].Trim();
                if (part.Length > 0) parts.Add(part);
                start = i + 1;
            }
        }
        return parts;
    }

    /// <summary>Every glob of the selection, compiled once: a malformed one is a usage error before anything runs.</summary>
    public void Validate()
    {
        foreach (var list in new[] { Case, Route, Runtime, Mode })
            if (list is not null) foreach (var g in SplitList(list)) Glob.ToRegex(g, crossSegments: true);
        if (Cells is not null) Glob.ToRegex(Cells, crossSegments: true);
        _ = ParsedShard;
    }

    /// <summary>The selected cells, in plan order. Shards split by artifact, so no artifact is produced twice.</summary>
    public IReadOnlyList<Cell> Apply(IReadOnlyList<Cell> cells)
    {
        bool Any(string? globs, params string[] values) => globs is null
            || SplitList(globs).Any(g => values.Any(v => Glob.ToRegex(g, crossSegments: true).IsMatch(v)));
        var cellRegex = Cells is null ? null : Glob.ToRegex(Cells, crossSegments: true);
        var selected = cells.Where(c => (cellRegex is null || cellRegex.IsMatch(c.Name))
                                        && Any(Case, c.Case) && Any(Route, c.Route) && Any(Mode, c.Mode)
                                        // A runtime's glob takes its libraries' runtimes too: torchsharp-0.107 selects torchsharp-0.107+pybridge.
                                        && (GoldenFixture.IsGolden(c.Producer) || Any(Runtime, c.Producer, Runtimes.Runtime.WithoutLibrary(c.Producer)))
                                        && Any(Runtime, c.Consumer, Runtimes.Runtime.WithoutLibrary(c.Consumer))).ToList();
        if (ParsedShard is not { } shard) return selected;
        var artifacts = selected.Select(c => c.ArtifactKey).Distinct().Select((key, k) => (key, k)).ToDictionary(x => x.key, x => x.k);
        return selected.Where(c => artifacts[c.ArtifactKey] % shard.Count == shard.Index - 1).ToList();
    }
}
