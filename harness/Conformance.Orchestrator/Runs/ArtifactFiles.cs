using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Runs;

/// <summary>The artifact files of a run on disk: copied, examined, and removed when a producer left them half-written.</summary>
public static class ArtifactFiles
{
    /// <summary>A folder artifact's copy: every file written durably; a copy already there is replaced.</summary>
    public static void CopyFolder(string from, string to)
    {
        if (Directory.Exists(to)) Directory.Delete(to, recursive: true);
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from).Order(StringComparer.Ordinal))
        {
            using var input = File.OpenRead(f);
            DurableFile.Write(Path.Combine(to, Path.GetFileName(f)), s => input.CopyTo(s));
        }
    }

    /// <summary>The cause alone: a <see cref="SaveFailedException"/> already names the path.</summary>
    public static string IoCause(Exception e) => e is SaveFailedException s ? s.Cause : Errno.Cause(e);

    /// <summary>Deletes <paramref name="path"/> and the save temporaries beside it; returns what it removed (what it could not remove is named too).</summary>
    public static IReadOnlyList<string> RemovePartial(string path)
    {
        var removed = new List<string>();
        try
        {
            foreach (var f in DurableFile.Leftovers(path).Prepend(path).Where(File.Exists))
            {
                try { File.Delete(f); removed.Add(f); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { removed.Add($"{f} NOT removed: {Errno.Cause(e)}"); }
            }
            // A folder artifact (Hugging Face's layouts) that a producer left half-written.
            if (Directory.Exists(path))
            {
                try { Directory.Delete(path, recursive: true); removed.Add(path + "/"); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { removed.Add($"{path}/ NOT removed: {Errno.Cause(e)}"); }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { removed.Add($"{Path.GetDirectoryName(path)} NOT listed: {Errno.Cause(e)}"); }
        return removed;
    }

    /// <summary>Why a file a producer claims to have written is not there ("does not exist", "is empty"), or null.</summary>
    public static string? ArtifactMissing(string path)
    {
        try
        {
            // A folder artifact (Hugging Face's layouts) must hold at least one non-empty file.
            if (Directory.Exists(path))
                return Directory.GetFiles(path).Any(f => new FileInfo(f).Length > 0) ? null : "is a folder without a non-empty file";
            var info = new FileInfo(path);
            return !info.Exists ? "does not exist"
                : info.Length == 0 ? "is empty (0 bytes)" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot be examined: {Errno.Cause(e)}";
        }
    }
}
