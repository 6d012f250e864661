
namespace Conformance.Orchestrator.Vocabulary;

public static class Outcomes
{
    public static string Wire(this Outcome o) => o switch
    {
        Outcome.Pass => "pass",
        Outcome.Fail => "fail",
        Outcome.KnownFailure => "known_failure",
        Outcome.NotApplicable => "not_applicable",
        Outcome.Skipped => "skipped",
        _ => throw new ArgumentOutOfRangeException(nameof(o)),
    };

    public static Outcome Parse(string s) => Enum.GetValues<Outcome>().First(o => o.Wire() == s);
}
