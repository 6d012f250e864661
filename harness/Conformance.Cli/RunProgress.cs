using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Vocabulary;
using Spectre.Console;

namespace Conformance.Cli;

/// <summary>
/// Progress of a run on stderr: a live Spectre.Console bar in a terminal (it follows the terminal's
/// width, however narrow), sparse plain lines (every tenth of the run) when stderr is redirected.
/// </summary>
public static class RunProgress
{
    public static RunResult Show(string title, Func<Action<CellResult, int, int>, RunResult> run)
    {
        if (Console.IsErrorRedirected) return Sparse(run);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        RunResult? result = null;
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title));
                int fails = 0;
                result = run((r, done, total) =>
                {
                    if (r.Outcome == Outcome.Fail) fails++;
                    task.MaxValue = Math.Max(total, 1);
                    task.Value = done;
                    // Short enough for a 40-column terminal; the failing count is what a person watches.
                    task.Description = Markup.Escape($"{done}/{total}") + (fails > 0 ? $" [red]{fails} FAIL[/]" : "");
                });
                task.Value = task.MaxValue;
            });
        return result!;
    }

    private static RunResult Sparse(Func<Action<CellResult, int, int>, RunResult> run)
    {
        var start = DateTime.Now;
        int last = -1;
        return run((r, done, total) =>
        {
            int tenth = done * 10 / Math.Max(total, 1);
            if (tenth == last && done != total) return;
            last = tenth;
            Console.Error.WriteLine($"[{done}/{total}] {(DateTime.Now - start).TotalSeconds:0}s {r.Outcome.Wire()} {r.Cell.Name}");
        });
    }
}
