using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Check;

/// <summary>The eval outputs of a load into a suite twin (<c>--model-twin</c>).</summary>
/// <summary>
/// The eval outputs of a load into a suite twin (<c>--model-twin</c>): reference (the first PyTorch that loads it),
/// within or differs (against it), loaded (no PyTorch reference to compare with), failed, not_run.
/// </summary>
public sealed record TwinResult(string Runtime, string Status, string Message, double? MaxAbsDiff)
{
    /// <summary>The eval outputs, flattened, and their shape (null when it did not load).</summary>
    public double[]? Values { get; init; }
    public long[]? Shape { get; init; }
}
