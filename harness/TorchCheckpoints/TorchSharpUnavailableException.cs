namespace TorchCheckpoints;

/// <summary>
/// TorchSharp's native library could not be loaded, so tensors cannot be made with
/// <see cref="TorchSharpTensors"/> (<see cref="RawTensors"/> needs no libtorch). The message says what
/// to reference and what the system must have; <see cref="Exception.InnerException"/> is TorchSharp's
/// own error.
/// </summary>
public sealed class TorchSharpUnavailableException : Exception
{
    /// <summary>The libtorch package TorchSharp 0.107 is built against, which the application references.</summary>
    public const string LibTorchPackage = "libtorch-cpu-linux-x64 2.10.0 (or TorchSharp-cpu 0.107.0; libtorch-cpu-win-x64 / -osx-arm64 elsewhere)";

    internal TorchSharpUnavailableException(Exception cause)
        : base("TorchSharp's native library (LibTorchSharp) could not be loaded, so TorchCheckpoints cannot make TorchSharp tensors. "
               + $"Reference {LibTorchPackage} in the application. On Linux, LibTorchSharp also needs a libstdc++ with GLIBCXX_3.4.32 "
               + "(GCC 13: Debian 13, Ubuntu 24.04 or newer; Debian 12 has 3.4.30), which TorchSharp's own message below may report as a missing package. "
               + "To read without libtorch, pass RawTensors.Instance. TorchSharp said: " + Innermost(cause).Message, cause)
    {
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
