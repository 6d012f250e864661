namespace Conformance.Orchestrator.Vocabulary;

/// <summary>
/// One thing wrong with a cell: a <see cref="Code"/> from <see cref="ProblemCodes"/>, the
/// <see cref="Subject"/> it is about (a key, a field, a runtime; empty when the whole cell) and a
/// message a person reads. The ledger matches on the code, the subject and the start of the message,
/// so every problem of a cell is kept and none is cut off before matching.
/// </summary>
public sealed record Problem(string Code, string Subject, string Message)
{
    /// <summary>The measured quantity behind the problem where there is one (an output's max abs diff), so a ledger entry can bound it.</summary>
    public double? Measure { get; init; }

    /// <summary>What a report prints: the message, after the code where the message does not say what failed.</summary>
    public string Line => ProblemCodes.IsError(Code) ? $"{Code}: {Message}" : Message;

    public override string ToString() => Line;
}
