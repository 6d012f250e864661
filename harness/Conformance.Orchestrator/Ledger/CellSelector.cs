using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// One block of a ledger entry's <c>cells</c>: every combination of its cases, routes, producers,
/// consumers and modes (a Cartesian product). Each item is a name or a simple glob over one field
/// (<c>*</c> any run of characters, <c>?</c> one), anchored to the whole field; there are no braces,
/// so a set that is not a product is written as several blocks, one line each, that a person reads
/// like rows of a table.
/// </summary>
/// <remarks>
/// Producer and consumer are separate lists rather than <c>producer-&gt;consumer</c> pairs: every item
/// stays one runtime name or glob, and a direction with its own modes
/// (<c>torchsharp-*</c> to <c>pytorch-1.13</c> in two modes, to <c>pytorch-2.*</c> in four) is its own row.
/// </remarks>
public sealed record CellSelector(
    IReadOnlyList<string> Cases,
    IReadOnlyList<string> Routes,
    IReadOnlyList<string> Producers,
    IReadOnlyList<string> Consumers,
    IReadOnlyList<string> Modes)
{
    /// <summary>The fields of a block, in the order they are written.</summary>
    public static readonly IReadOnlyList<string> Fields = ["cases", "routes", "producers", "consumers", "modes"];

    private readonly Regex[][] _regexes = [.. new[] { Cases, Routes, Producers, Consumers, Modes }.Select(l => l.Select(ItemRegex).ToArray())];

    public bool Matches(Cell cell) =>
        Any(0, cell.Case) && Any(1, cell.Route) && Any(2, cell.Producer) && Any(3, cell.Consumer) && Any(4, cell.Mode);

    private bool Any(int field, string value) => _regexes[field].Any(r => r.IsMatch(value));

    /// <summary>A producer or consumer names a device's runtime (<c>-cuda</c>).</summary>
    public bool NamesDevice => Producers.Concat(Consumers).Any(p => p.Contains("-cuda", StringComparison.Ordinal));

    /// <summary>
    /// A block with one item per field, written as a cell name: <c>lenet/pickle/torchsharp-*-&gt;pytorch-*/mmap</c>
    /// (for tests and one-off entries; the ledger file writes the lists).
    /// </summary>
    public static CellSelector Of(string cellGlob)
    {
        var parts = cellGlob.Split('/');
        var pair = parts.Length == 4 ? parts[2].Split("->") : [];
        if (parts.Length != 4 || pair.Length != 2)
            throw new FormatException($"cell selector \"{cellGlob}\" is not case/route/producer->consumer/mode");
        var s = new CellSelector([parts[0]], [parts[1]], [pair[0]], [pair[1]], [parts[3]]);
        var items = s.Lists.SelectMany((l, f) => l.Select(v => (f, v)));
        foreach (var (f, v) in items)
            if (Problem(v) is { } why) throw new FormatException($"cell selector \"{cellGlob}\": {Fields[f]} \"{v}\" {why}");
        return s;
    }

    private IReadOnlyList<string>[] Lists => [Cases, Routes, Producers, Consumers, Modes];

    /// <summary>
    /// Reads one block; <paramref name="at"/> names it (<c>known-failures.json: entry "x": cells[1]</c>)
    /// in every error, with the field and the item at fault.
    /// </summary>
    public static CellSelector Parse(JsonNode? node, string at)
    {
        if (node is not JsonObject o)
            throw new FormatException($"{at} must be an object with {string.Join(", ", Fields.Select(f => $"\"{f}\""))}, each a list of names or globs");
        foreach (var (key, _) in o)
            if (!Fields.Contains(key))
                throw new FormatException($"{at} has unknown field \"{key}\" (known: {string.Join(", ", Fields)})");
        var lists = new List<IReadOnlyList<string>>();
        foreach (var field in Fields)
        {
            if (o[field] is not JsonArray a || a.Count == 0)
                throw new FormatException($"{at} needs \"{field}\", a non-empty list of names or globs (\"*\" for any)");
            var items = new List<string>();
            for (int i = 0; i < a.Count; i++)
            {
                var item = a[i] is JsonValue v && v.TryGetValue(out string? s) ? s
                    : throw new FormatException($"{at}.{field}[{i}] must be a string");
                if (Problem(item) is { } why) throw new FormatException($"{at}.{field}[{i}] \"{item}\" {why}");
                if (items.Contains(item)) throw new FormatException($"{at}.{field}[{i}] \"{item}\" is listed twice");
                items.Add(item);
            }
            lists.Add(items);
        }
        return new CellSelector(lists[0], lists[1], lists[2], lists[3], lists[4]);
    }

    /// <summary>What is wrong with one item, or null: a name or a simple glob over one field.</summary>
    private static string? Problem(string item) =>
        item.Length == 0 ? "is empty"
        : item.IndexOfAny(['{', '}', ',']) >= 0 ? "has a brace or comma: list each alternative as its own item, or write another block"
        : item.Contains('/') ? "has a '/': each field is one segment of the cell name"
        : item.Contains("->", StringComparison.Ordinal) ? "has '->': write the producer and the consumer in their own fields"
        : item.Contains("**", StringComparison.Ordinal) ? "has \"**\": one '*' already matches any run of characters in a field"
        : item.Any(c => char.IsWhiteSpace(c) || c is '[' or ']' or '\\') ? "has a character a name never holds (whitespace, a bracket or a backslash)"
        : null;

    private static Regex ItemRegex(string item) =>
        new("^" + string.Concat(item.Select(c => c switch { '*' => ".*", '?' => ".", _ => Regex.Escape(c.ToString()) })) + "$",
            RegexOptions.Singleline | RegexOptions.CultureInvariant);

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (field, list) in Fields.Zip(Lists)) o[field] = new JsonArray([.. list.Select(s => (JsonNode?)JsonValue.Create(s))]);
        return o;
    }

    /// <summary>The block as the ledger writes it, on one line: <c>{"cases": ["lenet"], "routes": ["pickle"], ...}</c>.</summary>
    public override string ToString() =>
        "{" + string.Join(", ", Fields.Zip(Lists).Select(f => $"\"{f.First}\": [{string.Join(", ", f.Second.Select(s => JsonSerializer.Serialize(s, LedgerWriter.Options)))}]")) + "}";

    public bool Equals(CellSelector? other) =>
        other is not null && Lists.Zip(other.Lists).All(p => p.First.SequenceEqual(p.Second, StringComparer.Ordinal));

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}
