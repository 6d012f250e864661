namespace Conformance.Orchestrator.Check;

/// <summary>The exit code of a run from its files' outcomes.</summary>
public static class CheckOutcomes
{
    public const int Usage = 2;

    // Gravest first: an unreadable file hides everything else, then a model that does not load, then a twin that
    // does not load or compare, then a file that is no model.
    private static readonly CheckOutcome[] Gravity = [CheckOutcome.IoError, CheckOutcome.DoesNotLoad, CheckOutcome.TwinFails, CheckOutcome.NotAModel];

    public static int ExitCode(IEnumerable<CheckOutcome> outcomes)
    {
        var set = outcomes.ToHashSet();
        return (int)(Gravity.FirstOrDefault(set.Contains, CheckOutcome.Loads));
    }
}
