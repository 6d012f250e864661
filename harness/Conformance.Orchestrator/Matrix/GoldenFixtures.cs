using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Matrix;

public static class GoldenFixtures
{
    /// <summary>Every <c>fixtures/&lt;producer&gt;/&lt;case&gt;.&lt;route&gt;.&lt;ext&gt;</c> that has its observation beside it.</summary>
    public static IReadOnlyList<GoldenFixture> Find(string fixturesDir)
    {
        if (!Directory.Exists(fixturesDir)) return [];
        var list = new List<GoldenFixture>();
        foreach (var dir in Directory.GetDirectories(fixturesDir).Order(StringComparer.Ordinal))
        // Files, and folders (Hugging Face's layouts, named <case>.<route>.hf).
        foreach (var file in Directory.GetFiles(dir).Where(f => !f.EndsWith(".json", StringComparison.Ordinal)).Concat(Directory.GetDirectories(dir)).Order(StringComparer.Ordinal))
        {
            var parts = Path.GetFileName(file).Split('.');
            if (parts.Length != 3 || !File.Exists(Path.ChangeExtension(file, ".json"))) continue;
            list.Add(new GoldenFixture(Path.GetFileName(dir), parts[0], parts[1], file));
        }
        return list;
    }
}
