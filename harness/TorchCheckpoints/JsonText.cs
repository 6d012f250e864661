using System.Text;

namespace TorchCheckpoints;

/// <summary>JSON strings written as the tools that read our files write them, so our bytes match theirs.</summary>
internal static class JsonText
{
    /// <summary>
    /// A JSON string: quote, backslash and control characters escaped. With <paramref name="asciiOnly"/> every
    /// character past '~' too, as Python's <c>json.dumps</c> does (transformers' index files); without it the rest
    /// stays UTF-8, as serde_json does (safetensors' headers).
    /// </summary>
    public static string Quote(string text, bool asciiOnly)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in text)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                < ' ' => $"\\u{(int)c:x4}",
                > '~' when asciiOnly => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return sb.Append('"').ToString();
    }
}
