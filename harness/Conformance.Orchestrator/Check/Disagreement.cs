
namespace Conformance.Orchestrator.Check;

/// <summary>One reader on one committed fixture where `check` and the matrix's golden cell say different things.</summary>
public sealed record Disagreement(string Cell, string Fixture, string Reader, string Matrix, string Check)
{
    public override string ToString() => $"{Cell}: the matrix says {Matrix}, check's '{Reader}' on {Fixture} says {Check}";
}
