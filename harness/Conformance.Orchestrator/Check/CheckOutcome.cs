namespace Conformance.Orchestrator.Check;

/// <summary>
/// What a checked file is to the question "will it load in .NET?"; the value is <c>conformance check</c>'s
/// exit code for it. 2 (bad usage) belongs to the command line, never to a file.
/// </summary>
public enum CheckOutcome
{
    /// <summary>A TorchSharp reader reads every tensor with PyTorch's bytes (TorchScript: torch.jit.load loads it).</summary>
    Loads = 0,

    /// <summary>A model file that no TorchSharp reader reads intact (damaged, legacy, pickled class, a failing reader, …).</summary>
    DoesNotLoad = 1,

    /// <summary>
    /// Not model weights: an optimizer state (TorchSharp's or PyTorch's), a single Tensor.Save tensor, an empty
    /// file, or no PyTorch or TorchSharp format at all. The verdict says which and whether its own loader reads it.
    /// </summary>
    NotAModel = 3,

    /// <summary>The file could not be read (permissions, an I/O error), or the report could not be written.</summary>
    IoError = 4,

    /// <summary>
    /// With --model-twin: the file does not load into the twin on some runtime, no PyTorch loads it to give the
    /// reference outputs, or a runtime's eval outputs differ from the reference beyond the case's tolerance.
    /// </summary>
    TwinFails = 5,
}
