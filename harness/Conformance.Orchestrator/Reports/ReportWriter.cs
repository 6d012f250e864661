using Conformance.Orchestrator.Matrix;

namespace Conformance.Orchestrator.Reports;

public static class ReportWriter
{
    /// <summary>
    /// Writes compatibility.json, .md and .html into <paramref name="dir"/>; returns their paths. Each
    /// file is written beside its final name and then renamed, so a full disk leaves the previous
    /// report (or none), never a truncated one. <paramref name="json"/> replaces the JSON (merge keeps its own).
    /// </summary>
    public static IReadOnlyList<string> WriteAll(RunResult run, string dir, string? json = null)
    {
        Directory.CreateDirectory(dir);
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
            var partial = path + ".partial";
            try
            {
                File.WriteAllText(partial, text());
                File.Move(partial, path, overwrite: true);
            }
            finally
            {
                if (File.Exists(partial)) File.Delete(partial);
            }
            written.Add(path);
        }
        return written;
    }
}
