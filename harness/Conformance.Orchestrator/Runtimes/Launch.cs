namespace Conformance.Orchestrator.Runtimes;

/// <summary>How to start a runtime's worker: an argv and the environment added to ours.</summary>
public sealed record Launch(IReadOnlyList<string> Command, IReadOnlyDictionary<string, string> Environment)
{
    public Launch(params string[] command) : this(command, new Dictionary<string, string>()) { }

    /// <summary>The command line as a person would paste it into a shell.</summary>
    public string Display() =>
        string.Join(" ", Environment.Select(kv => $"{kv.Key}={Quote(kv.Value)}").Concat(Command.Select(Quote)));

    private static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_./=:+,@".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
