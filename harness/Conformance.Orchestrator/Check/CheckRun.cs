using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Check;

/// <summary>The whole run of <c>conformance check</c>.</summary>
public sealed record CheckRun(IReadOnlyList<CheckedFile> Files, IReadOnlyList<Runtime> Runtimes, DateTimeOffset Started, TimeSpan Elapsed)
{
    public bool AllLoad => Files.All(f => f.Verdict.LoadsInDotNet);

    /// <summary>The run's exit code: the gravest outcome of any file (<see cref="CheckOutcomes.ExitCode"/>).</summary>
    public int ExitCode => CheckOutcomes.ExitCode(Files.Select(f => f.Verdict.Outcome));
}
