using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>How close a consumer's eval outputs must be to the producer's: |c - p| ≤ atol + rtol·|p|.</summary>
public sealed record Tolerance(double Atol, double Rtol)
{
    public override string ToString() => $"atol={Atol:g3}, rtol={Rtol:g3}";
}
