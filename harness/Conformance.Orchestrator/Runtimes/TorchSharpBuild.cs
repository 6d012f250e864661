namespace Conformance.Orchestrator.Runtimes;

/// <summary>A built TorchSharp worker: the TorchSharp package version it was restored with, and its assembly.</summary>
public sealed record TorchSharpBuild(string PackageVersion, string Dll)
{
    public string Folder => Path.GetDirectoryName(Path.GetDirectoryName(Dll)!)!;
}
