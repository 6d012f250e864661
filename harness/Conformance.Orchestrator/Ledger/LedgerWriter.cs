using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Ledger;

/// <summary>
/// Writes <c>known-failures.json</c> as a person reviews it: indented, and each block of an entry's
/// <c>cells</c> on one line (<see cref="CellSelector.ToString"/>), so a block reads as a row.
/// </summary>
public static class LedgerWriter
{
    public static JsonSerializerOptions Options { get; } = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Write(JsonObject root, string source)
    {
        var copy = root.DeepClone().AsObject();
        var lines = new List<string>();
        foreach (var entry in copy["entries"]?.AsArray() ?? [])
        {
            if (entry?["cells"] is not JsonArray cells) continue;
            var at = $"{source}: entry \"{entry["id"]}\"";
            for (int i = 0; i < cells.Count; i++)
            {
                lines.Add(CellSelector.Parse(cells[i], $"{at}: cells[{i}]").ToString());
                cells[i] = $"@@cells-block-{lines.Count - 1}@@";
            }
        }
        var text = copy.ToJsonString(Options);
        for (int i = 0; i < lines.Count; i++) text = text.Replace($"\"@@cells-block-{i}@@\"", lines[i], StringComparison.Ordinal);
        return text + "\n";
    }
}
