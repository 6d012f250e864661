using Conformance.Orchestrator.Matrix;

namespace Conformance.Orchestrator.Reports;

public static class ReportWriter
{
    /// <summary>Writes compatibility.json, .md and .html into <paramref name="dir"/>; returns their paths.</summary>
    public static IReadOnlyList<string> WriteAll(RunResult run, string dir)
    {
        Directory.CreateDirectory(dir);
        var files = new (string Name, string Text)[]
        {
            ("compatibility.json", ReportJson.Write(run)),
            ("compatibility.md", ReportText.Markdown(run)),
            ("compatibility.html", ReportHtml.Render(run)),
        };
        foreach (var (name, text) in files) File.WriteAllText(Path.Combine(dir, name), text);
        return files.Select(f => Path.Combine(dir, f.Name)).ToList();
    }
}
