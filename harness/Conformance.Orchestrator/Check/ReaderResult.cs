using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Check;

/// <summary>What one reader in one runtime made of a file, judged against the reference read.</summary>
public sealed record ReaderResult(string Runtime, string Reader, string Status, string Message, int Tensors)
{
    /// <summary>read (identical bytes), differs, failed, not_run.</summary>
    public bool Identical => Status == "identical";
}
