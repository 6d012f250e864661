using System.Text.Json.Nodes;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Vocabulary;

/// <summary>
/// A named case: a model twin, its tolerance, and what else it exercises.
/// <paramref name="TrainModeMatters"/>: the model has dropout or batch statistics, so train-mode
/// outputs must differ from eval-mode ones (proof that eval() took effect).
/// <paramref name="Golden"/>: its artifacts are small enough to keep as golden fixtures.
/// </summary>
public sealed record CaseSpec(
    string Name,
    string Description,
    Tolerance Tolerance,
    bool TrainModeMatters = false,
    PartialLoad? Partial = null,
    ShapeMismatch? Mismatch = null,
    bool Golden = true,
    string? Optimizer = null)
{
    /// <summary>A training-checkpoint case: the artifact is the seed's checkpoint dict for this optimizer.</summary>
    public bool IsCheckpoint => Optimizer is not null;

    /// <summary>The routes its artifact crosses by, in column order.</summary>
    public IReadOnlyList<string> Routes { get; init; } = [];

    /// <summary>The builder of its model twin (models.BUILDERS ⇄ Zoo.Builders), and of each load mode's variant.</summary>
    public string Model { get; init; } = Name;

    /// <summary>Load mode -> the builder of the consumer's model for that mode (strict_false, shape_mismatch).</summary>
    public IReadOnlyDictionary<string, string> Variants { get; init; } = new Dictionary<string, string>();
}
