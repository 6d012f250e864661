using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Matrix;

namespace Conformance.Orchestrator.KnownFailures;

/// <summary>
/// One declared failure: a cell pattern (<c>*</c> matches anything, <c>?</c> one character,
/// <c>{a,b}</c> either word), the
/// expected message prefix (<c>*</c> allowed there too), the reason and a link. A declared cell still runs.
/// </summary>
public sealed record KnownFailure(string Pattern, string MessagePrefix, string Reason, string Link)
{
    private Regex CellRegex { get; } = Glob(Pattern, anchorEnd: true);
    private Regex MessageRegex { get; } = Glob(MessagePrefix, anchorEnd: false);

    public bool Matches(Cell cell) => CellRegex.IsMatch(cell.Name);

    public bool MatchesMessage(string message) => MessageRegex.IsMatch(message);

    /// <summary>A whole cell name against a pattern with * ? and {a,b} (also the CLI's --cells filter).</summary>
    public static bool MatchesPattern(string pattern, Cell cell) => Glob(pattern, anchorEnd: true).IsMatch(cell.Name);

    private static Regex Glob(string glob, bool anchorEnd)
    {
        // Regex.Escape turns "{" into "\{" and leaves "}" alone: "\{a,b}" becomes "(?:a|b)".
        var body = Regex.Escape(glob).Replace("\\*", ".*").Replace("\\?", ".");
        body = Regex.Replace(body, @"\\\{([^{}]*)\}", m => "(?:" + m.Groups[1].Value.Replace(",", "|") + ")");
        return new Regex("^" + body + (anchorEnd ? "$" : ""), RegexOptions.Singleline);
    }
}

/// <summary>
/// The one file of expected failures (<c>known-failures.json</c>). A cell that fails as declared is
/// <c>known_failure</c>. A declared cell that passes is stale and fails, and so does a declared cell
/// that fails differently, and so does an entry that matches no cell.
/// </summary>
public sealed class KnownFailureList(IReadOnlyList<KnownFailure> entries)
{
    public IReadOnlyList<KnownFailure> Entries { get; } = entries;

    public static KnownFailureList Empty { get; } = new([]);

    public static KnownFailureList Load(string path)
    {
        if (!File.Exists(path)) return Empty;
        return Parse(File.ReadAllText(path), path);
    }

    public static KnownFailureList Parse(string json, string source)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException($"{source}: expected a JSON object with \"entries\"");
        var list = new List<KnownFailure>();
        int i = 0;
        foreach (var node in root["entries"]?.AsArray() ?? [])
        {
            string Req(string name) => node?[name]?.GetValue<string>() is { Length: > 0 } v
                ? v : throw new FormatException($"{source}: entries[{i}] needs a non-empty \"{name}\"");
            list.Add(new KnownFailure(Req("cell"), Req("message"), Req("reason"), Req("link")));
            i++;
        }
        return new KnownFailureList(list);
    }

    public KnownFailure? For(Cell cell) => Entries.FirstOrDefault(e => e.Matches(cell));

    /// <summary>Turns a raw verdict into the declared one.</summary>
    public CellResult Apply(CellResult raw)
    {
        var entry = For(raw.Cell);
        if (entry is null) return raw;
        return raw.Outcome switch
        {
            Outcome.Fail when entry.MatchesMessage(raw.Message) =>
                raw with { Outcome = Outcome.KnownFailure, Declared = entry },
            Outcome.Fail => raw with
            {
                Declared = entry,
                Message = $"declared known failure expected a message starting \"{entry.MessagePrefix}\" but got: {raw.Message}",
            },
            Outcome.Pass => raw with
            {
                Outcome = Outcome.Fail,
                Declared = entry,
                Message = $"stale known failure: {raw.Cell.Name} now passes, but known-failures.json declares it failing (pattern \"{entry.Pattern}\"); "
                          + "remove or narrow that entry",
            },
            // A cell this runtime cannot run says nothing about the entry either way.
            Outcome.NotApplicable => raw,
            _ => raw with { Declared = entry },
        };
    }

    /// <summary>Entries that match none of <paramref name="cells"/>: each is an error in the list.</summary>
    public IReadOnlyList<KnownFailure> Unmatched(IEnumerable<Cell> cells)
    {
        var all = cells.ToList();
        return Entries.Where(e => !all.Any(e.Matches)).ToList();
    }
}
