
namespace Conformance.Orchestrator.Check;

/// <summary>One file or folder to check: its full path, and the path as the user gave it (what every message shows).</summary>
public sealed record CheckItem(string Full, string Display);
