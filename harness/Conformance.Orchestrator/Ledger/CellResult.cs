using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Ledger;

/// <summary>The verdict on one cell, with the evidence behind it.</summary>
public sealed record CellResult(
    Cell Cell,
    Outcome Outcome,
    string Message,
    OutputDiff? Diff = null,
    LedgerEntry? Declared = null,
    string? Artifact = null,
    double Seconds = 0)
{
    /// <summary>Every problem the judge found, structured; the ledger matches each one.</summary>
    public IReadOnlyList<Problem> Problems { get; init; } = [];

    /// <summary>The consumer's largest |train-mode − eval-mode| output difference, where measured.</summary>
    public double? TrainEvalDiff { get; init; }

    /// <summary>TorchScript artifacts: the archive's 'version' record, as the producer wrote it.</summary>
    public string? ArchiveVersion { get; init; }

    /// <summary>
    /// Who judged the cell when it was not this run's own judge: a GPU run judged by <c>judge-gpu</c>,
    /// or the retired on-device judge's rows, labelled with the machine and the date. Null: this run.
    /// </summary>
    public string? JudgedBy { get; init; }

    /// <summary>Whether the cell's test passes: a pass, a failure as declared, or an honest not_applicable.</summary>
    public bool Acceptable => Outcome is Outcome.Pass or Outcome.KnownFailure or Outcome.NotApplicable;
}
