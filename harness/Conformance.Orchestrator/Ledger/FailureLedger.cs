using System.Globalization;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// The failure ledger (<c>known-failures.json</c>), strict in the manner of protobuf's failure lists
/// and PyTorch's compatibility allow list. A run fails on a stale entry (a cell it declares passes), an
/// entry matching no cell (unless it <c>awaits</c> something, see <see cref="LedgerEntry.Awaits"/>), a cell matched by two entries, a declared cell that is not_applicable or
/// skipped, an expired entry, an entry matching more cells than its <c>max_cells</c>, an expected
/// problem that no cell shows, and a declared cell that shows a problem its entry does not name.
/// </summary>
public sealed class FailureLedger(IReadOnlyList<LedgerEntry> entries)
{
    public IReadOnlyList<LedgerEntry> Entries { get; } = entries;

    public static FailureLedger Empty { get; } = new([]);

    public static FailureLedger Load(string path) => File.Exists(path) ? Parse(File.ReadAllText(path), path) : Empty;

    public static FailureLedger Parse(string json, string source)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException($"{source}: expected a JSON object with \"entries\"");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new FormatException($"{source}: not JSON: {e.Message}", e);
        }
        var list = new List<LedgerEntry>();
        var ids = new HashSet<string>();
        int i = 0;
        foreach (var node in root["entries"]?.AsArray() ?? [])
        {
            var at = $"{source}: entries[{i}]";
            string Req(JsonNode? n, string name, string where) => n?[name] is JsonValue v && v.TryGetValue(out string? s) && s.Length > 0
                ? s : throw new FormatException($"{where} needs a non-empty \"{name}\"");
            var id = Req(node, "id", at);
            at = $"{source}: entry \"{id}\"";
            if (!ids.Add(id)) throw new FormatException($"{at}: the id is used twice");
            foreach (var (key, _) in node!.AsObject())
                if (!EntryFields.Contains(key))
                    throw new FormatException($"{at} has unknown field \"{key}\" (known: {string.Join(", ", EntryFields)})"
                                              + (key == "cell" ? "; the single \"cell\" glob is now \"cells\", a list of blocks of cases, routes, producers, consumers and modes" : ""));
            var link = Req(node, "link", at);
            if (!link.StartsWith("https://", StringComparison.Ordinal)) throw new FormatException($"{at}: \"link\" must be an https:// address");
            var problems = new List<ExpectedProblem>();
            foreach (var p in node!["problems"]?.AsArray() ?? [])
            {
                var code = Req(p, "code", $"{at}: problems[{problems.Count}]");
                foreach (var (key, _) in p!.AsObject())
                    if (!ProblemFields.Contains(key))
                        throw new FormatException($"{at}: problems[{problems.Count}] has unknown field \"{key}\" (known: {string.Join(", ", ProblemFields)})");
                if (!ProblemCodes.All.Contains(code))
                    throw new FormatException($"{at}: problems[{problems.Count}] has unknown code \"{code}\" (known: {string.Join(", ", ProblemCodes.All.Order())})");
                // An empty message prefix only beside an exact subject: the key is then the whole finding.
                var subject = p!["subject"]?.GetValue<string>();
                var message = p["message"] is JsonValue mv && mv.TryGetValue(out string? ms) && (ms.Length > 0 || subject is not null) ? ms
                    : throw new FormatException($"{at}: problems[{problems.Count}] needs \"message\", the start of the problem's message (empty only with a \"subject\")");
                problems.Add(new ExpectedProblem(code, subject, message,
                    p["max_measure"]?.GetValue<double>()));
            }
            if (problems.Count == 0) throw new FormatException($"{at} needs at least one expected problem in \"problems\"");
            var maxCells = node["max_cells"] is JsonValue mc && mc.TryGetValue(out int m) && m > 0
                ? m : throw new FormatException($"{at} needs \"max_cells\", a positive count of the cells it may declare");
            if (node["cells"] is not JsonArray blocks || blocks.Count == 0)
                throw new FormatException($"{at} needs \"cells\", a non-empty list of blocks, each {{{string.Join(", ", CellSelector.Fields.Select(f => $"\"{f}\": [...]"))}}}");
            var cells = blocks.Select((b, k) => CellSelector.Parse(b, $"{at}: cells[{k}]")).ToList();
            var library = node["library"] is null ? null : Req(node, "library", at);
            LibraryAgrees(library, cells, at);
            list.Add(new LedgerEntry(id, cells, problems, Req(node, "reason", at), link,
                Date(Req(node, "added", at), at, "added"),
                node["expires"] is null ? null : Date(Req(node, "expires", at), at, "expires"),
                maxCells,
                node["awaits"] is null ? null : Req(node, "awaits", at),
                node["cpu_only"] is JsonValue co && co.TryGetValue(out bool cpuOnly) && cpuOnly,
                library));
            i++;
        }
        return new FailureLedger(list);
    }

    /// <summary>The fields an entry may have; any other is refused, so a misspelt field is never silently ignored.</summary>
    public static readonly IReadOnlyList<string> EntryFields = ["id", "library", "cells", "problems", "reason", "link", "added", "expires", "max_cells", "awaits", "cpu_only"];

    /// <summary>
    /// An entry about a .NET library's cells says which (<c>library</c>: one of cases.json's libraries, the one at
    /// fault), and its blocks name that library's runtimes (<c>torchsharp-*+pybridge</c>); an entry naming no
    /// library's runtime has none. A block may name the other library too, as the other side of a cell
    /// (TorchCheckpoints' files read by PyBridge), so PyBridge's findings never cover TorchCheckpoints' own cells.
    /// </summary>
    private static void LibraryAgrees(string? library, IReadOnlyList<CellSelector> cells, string at)
    {
        var known = Matrix.Catalogue.Libraries.Select(l => l.Id).ToList();
        if (library is not null && !known.Contains(library))
            throw new FormatException($"{at}: \"library\" \"{library}\" is not one of cases.json's libraries ({string.Join(", ", known)})");
        var named = cells.SelectMany(c => c.Producers.Concat(c.Consumers)).Select(Runtimes.Runtime.LibraryOf).OfType<string>().Distinct().ToList();
        if (named.Count > 0 && (library is null || !named.Contains(library)))
            throw new FormatException($"{at}: its cells name the runtimes of {string.Join(" and ", named)} (+library), so it needs \"library\", the one at fault: {string.Join(" or ", named.Select(n => $"\"{n}\""))}");
        if (named.Count == 0 && library is not null)
            throw new FormatException($"{at}: \"library\" \"{library}\" but no block names its runtimes (torchsharp-*+{library})");
    }

    private static readonly IReadOnlyList<string> ProblemFields = ["code", "subject", "message", "max_measure"];

    private static DateOnly Date(string s, string at, string field) =>
        DateOnly.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? d : throw new FormatException($"{at}: \"{field}\" must be a date, yyyy-MM-dd (got \"{s}\")");

    /// <summary>
    /// The entries declaring <paramref name="cell"/> (<see cref="LedgerEntry.Matches"/>). For a cell on a
    /// device, an entry that names a device (<see cref="LedgerEntry.NamesDevice"/>) takes it from those
    /// that do not: the device's own finding, not its CPU twin's.
    /// </summary>
    public IReadOnlyList<LedgerEntry> EntriesFor(Cell cell)
    {
        var all = Entries.Where(e => e.Matches(cell)).ToList();
        if (all.Count < 2 || !LedgerEntry.OnDevice(cell)) return all;
        var device = all.Where(e => e.NamesDevice).ToList();
        return device.Count > 0 ? device : all;
    }

    /// <summary>Turns a raw verdict into the declared one.</summary>
    public CellResult Apply(CellResult raw)
    {
        var matched = EntriesFor(raw.Cell);
        if (matched.Count == 0) return raw;
        var entry = matched[0];
        if (matched.Count > 1)
            return raw with
            {
                Outcome = Outcome.Fail, Declared = entry,
                Message = $"ledger: {raw.Cell.Name} is declared by {matched.Count} entries ({string.Join(", ", matched.Select(e => $"\"{e.Id}\""))}); a cell may be declared once. Was: {raw.Outcome.Wire()}: {raw.Message}",
            };
        switch (raw.Outcome)
        {
            case Outcome.Pass:
                return raw with
                {
                    Outcome = Outcome.Fail, Declared = entry,
                    Message = $"stale known failure: {raw.Cell.Name} now passes, but ledger entry {entry.Named(raw.Cell)} declares it failing; "
                              + "narrow or remove that entry (conformance ledger --fix)",
                };
            case Outcome.NotApplicable or Outcome.Skipped:
                return raw with
                {
                    Outcome = Outcome.Fail, Declared = entry,
                    Message = $"ledger entry \"{entry.Id}\" declares {raw.Cell.Name}, which came out {raw.Outcome.Wire()} ({raw.Message}): a declared cell must run and fail as declared",
                };
            case Outcome.Fail:
                var unnamed = raw.Problems.Where(p => !entry.Problems.Any(x => x.Matches(p))).ToList();
                if (raw.Problems.Count > 0 && unnamed.Count == 0) return raw with { Outcome = Outcome.KnownFailure, Declared = entry };
                return raw with
                {
                    Declared = entry,
                    Message = $"ledger entry \"{entry.Id}\" does not name {(raw.Problems.Count == 0 ? "this failure" : "these problems")}: "
                              + (unnamed.Count > 0 ? string.Join("; ", unnamed.Select(p => $"[{p.Code}] {p.Message}")) : raw.Message)
                              + $" (it expects {string.Join(" | ", entry.Problems)})",
                };
            default:
                return raw with { Declared = entry };
        }
    }

    /// <summary>
    /// What is wrong with the ledger after a run over <paramref name="ran"/>. <paramref name="complete"/>:
    /// the whole matrix ran, so counts can be checked against <c>max_cells</c>.
    /// </summary>
    public IReadOnlyList<LedgerError> Check(IReadOnlyList<CellResult> ran, bool complete, DateOnly today)
    {
        var errors = new List<LedgerError>();
        var declared = ran.Select(r => (Result: r, Entries: EntriesFor(r.Cell))).ToList();
        foreach (var e in Entries)
        {
            if (e.Expires is { } x && x < today)
                errors.Add(new LedgerError(e.Id, $"expired on {x:yyyy-MM-dd}: re-check the finding, then extend or remove the entry"));
            var cells = declared.Where(d => d.Entries.Contains(e)).Select(d => d.Result).ToList();
            if (cells.Count == 0)
            {
                if (complete && e.Awaits is null) errors.Add(new LedgerError(e.Id, "its cells match no cell of the run: remove the entry"));
                continue;
            }
            if (complete && cells.Count > e.MaxCells)
                errors.Add(new LedgerError(e.Id, $"matches {cells.Count} cells, more than its max_cells {e.MaxCells}: narrow its cells, or raise max_cells after checking every cell"));
            // Like max_cells, only a complete run shows every cell an entry declares.
            if (!complete) continue;
            var problems = cells.Where(r => r.Outcome == Outcome.KnownFailure).SelectMany(r => r.Problems).ToList();
            foreach (var x2 in e.Problems.Where(x2 => cells.Any(r => r.Outcome == Outcome.KnownFailure) && !problems.Any(x2.Matches)))
                errors.Add(new LedgerError(e.Id, $"expects {x2}, which no cell it declares shows: remove that expected problem"));
        }
        return errors;
    }
}
