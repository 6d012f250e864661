namespace Conformance.Orchestrator.Runtimes;

public static class RuntimeKinds
{
    public const string PyTorch = "pytorch";
    public const string TorchSharp = "torchsharp";
    /// <summary>The plumbing dummy; never part of the conformance matrix.</summary>
    public const string Dummy = "dummy";
}
