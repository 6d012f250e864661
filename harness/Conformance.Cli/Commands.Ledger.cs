using System.Text.Json.Nodes;
using Conformance.Orchestrator.Ledger;

namespace Conformance.Cli;

public static partial class Commands
{
    /// <summary>`ledger`: how each entry fared in a run; `--fix` rewrites the ledger from a complete run.</summary>
    public static int Ledger(bool fix, string? from)
    {
        var repo = Repo();
        var reportPath = from ?? Path.Combine(repo.ReportsDir, "compatibility.json");
        FailureLedger ledger;
        JsonNode report;
        try
        {
            ledger = FailureLedger.Load(repo.KnownFailuresFile);
            report = JsonNode.Parse(File.ReadAllText(reportPath)) ?? throw new FormatException($"{reportPath}: empty");
        }
        catch (Exception e) when (e is IOException or FormatException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        if (report["schema"]?.GetValue<int>() != 2)
        {
            Console.Error.WriteLine($"error: {reportPath} is not a schema-2 report: run `conformance run` first");
            return 2;
        }
        if (fix)
        {
            try
            {
                var (changes, residue) = LedgerFix.Fix(repo.KnownFailuresFile, report, reportPath);
                foreach (var c in changes) Console.WriteLine("changed: " + c);
                foreach (var r in residue) Console.WriteLine("left for a person: " + r);
                Console.WriteLine(changes.Count == 0 ? "known-failures.json: nothing to change" : $"rewrote {Rel(repo.KnownFailuresFile)} ({changes.Count} changes)");
                return residue.Count == 0 ? 0 : 1;
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine("error: " + e.Message);
                return 2;
            }
        }
        Console.WriteLine($"{"entry",-34} {"cells",5} {"known",5} {"max",5}  other");
        var uses = LedgerFix.Uses(ledger, report);
        foreach (var u in uses)
            Console.WriteLine($"{u.Entry.Id,-34} {u.Cells.Count,5} {u.Known,5} {u.Entry.MaxCells,5}  {(u.Stale.Count > 0 ? $"{u.Stale.Count} stale " : "")}{(u.Other.Count > 0 ? $"{u.Other.Count} failing otherwise" : "")}"
                              + (u.Cells.Count == 0 && u.Entry.Awaits is { } awaits ? $"dormant: awaits {awaits}" : ""));
        var errors = report["ledger_errors"]?.AsArray() ?? [];
        foreach (var e in errors) Console.WriteLine($"ERROR ledger entry \"{e!["entry"]}\": {e["message"]}");
        // A stale cell or one failing otherwise than declared fails this command too.
        return errors.Count == 0 && uses.All(u => u.Stale.Count == 0 && u.Other.Count == 0) ? 0 : 1;
    }
}
