using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Check;

/// <summary>The verdict in one line and what to do in another; <see cref="LoadsInDotNet"/> decides the exit code.</summary>
public sealed record Verdict(bool LoadsInDotNet, string Line, string Remedy)
{
    private readonly CheckOutcome? outcome;

    /// <summary>What the file is to the question "will it load in .NET?"; decides the exit code (<see cref="CheckOutcomes"/>).</summary>
    public CheckOutcome Outcome
    {
        get => outcome ?? (LoadsInDotNet ? CheckOutcome.Loads : CheckOutcome.DoesNotLoad);
        init => outcome = value;
    }

    /// <summary>With --model-twin: whether the file loads into the twin everywhere and its outputs agree, one line.</summary>
    public string? TwinLine { get; init; }

    /// <summary>How the file loads otherwise on a GPU than on the CPU in PyTorch (<see cref="Reports.DeviceRules"/>), one line each.</summary>
    public IReadOnlyList<string> DeviceWarnings { get; init; } = [];
}
