using System.Buffers.Binary;
using Conformance.Shared;

namespace Conformance.Files;

/// <summary>
/// A save that did not happen: <see cref="Exception.Message"/> names the file and the cause
/// ("No space left on device (ENOSPC)"), and nothing was left at the path or beside it.
/// </summary>
public sealed class SaveFailedException(string path, string cause, Exception? inner = null)
    : IOException($"could not save {path}: {cause}", inner)
{
    public string TargetPath { get; } = path;
    public string Cause { get; } = cause;
}
