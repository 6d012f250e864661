using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Conformance.Protocol;

public static class Wire
{
    /// <summary>Options shared by every .NET party: compact, one document per line.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Encode<T>(T message) => JsonSerializer.Serialize(message, Options);

    /// <summary>One protocol line; a line that is not the expected JSON is refused with the line quoted.</summary>
    public static T Decode<T>(string line)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(line, Options)
                   ?? throw new JsonException($"protocol line decoded to null: \"{Truncate(line, 200)}\"");
        }
        catch (JsonException e) when (!e.Message.StartsWith("protocol line", StringComparison.Ordinal))
        {
            throw new JsonException($"protocol line is not a {typeof(T).Name}: \"{Truncate(line, 200)}\" ({e.Message})", e);
        }
    }

    public static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";
}
