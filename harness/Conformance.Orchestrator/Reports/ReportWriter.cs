using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Reports;

public static class ReportWriter
{
    /// <summary>
    /// Writes compatibility.json, .md and .html into <paramref name="dir"/>; returns their paths. Each
    /// file goes through <see cref="DurableFile"/> (a temporary beside its final name, fsynced, its size
    /// checked, then renamed), so a full disk leaves the previous report (or none), never a truncated
    /// one. A failure throws <see cref="SaveFailedException"/> naming the file (or the folder) and the
    /// cause. <paramref name="json"/> replaces the JSON (merge keeps its own).
    /// </summary>
    public static IReadOnlyList<string> WriteAll(RunResult run, string dir, string? json = null)
    {
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SaveFailedException(dir, "could not create the folder: " + Errno.Cause(e), e);
        }
        var files = new (string Name, Func<string> Text)[]
        {
            ("compatibility.json", () => json ?? ReportJson.Write(run)),
            ("compatibility.md", () => ReportText.Markdown(run)),
            ("compatibility.html", () => ReportHtml.Render(run)),
        };
        var written = new List<string>();
        foreach (var (name, text) in files)
        {
            var path = Path.Combine(dir, name);
            DurableFile.WriteText(path, text());
            written.Add(path);
        }
        return written;
    }
}
