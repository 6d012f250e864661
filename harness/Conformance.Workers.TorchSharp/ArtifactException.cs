using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Protocol;
using Conformance.Workers.TorchSharp;
using Conformance.Workers.TorchSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

sealed class ArtifactException(string kind, string message, Exception inner) : Exception(message, inner)
{
    public string Kind { get; } = kind;

    /// <summary>"path: ExceptionType: message" on one line; the codec's own messages already start with the path.</summary>
    public static ArtifactException For(string kind, string path, Exception e)
    {
        var message = OneLine(e.Message);
        if (message.StartsWith(path + ": ", StringComparison.Ordinal)) message = message[(path.Length + 2)..];
        return new ArtifactException(kind, $"{path}: {e.GetType().Name}: {message}", e);
    }

    private static string OneLine(string s) =>
        string.Join(" ", s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)) is var t && t.Length > 600 ? t[..600] : t;
}
