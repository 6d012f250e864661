using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Runtimes;

/// <summary>
/// <c>runtimes.json</c>: the runtimes this suite expects, plus overrides. Example:
/// <code>
/// {
///   "expected": ["pytorch-1.13", "pytorch-2.6", "torchsharp-0.107"],
///   "rootfs": "/var/cache/torch-conformance/rootfs-trixie",
///   "runtimes": [
///     { "python": "/opt/venv/bin/python3" },
///     { "id": "pytorch-2.4", "kind": "pytorch", "version": "2.4.1", "device": "cpu",
///       "command": ["dotnet", "…/Conformance.Workers.PyTorch.dll", "--python-dll", "…", "--python-path", "…"],
///       "env": { "OMP_NUM_THREADS": "1" } }
///   ]
/// }
/// </code>
/// The file named by CONFORMANCE_RUNTIMES is read after the repository's and adds to it.
/// </summary>
public sealed record RuntimesConfig(
    IReadOnlyList<string> Expected,
    string? Rootfs,
    IReadOnlyList<string> Pythons,
    IReadOnlyList<Runtime> Runtimes)
{
    public static RuntimesConfig Empty { get; } = new([], null, [], []);

    public static RuntimesConfig Load(params string?[] files)
    {
        var result = Empty;
        foreach (var f in files.Where(f => !string.IsNullOrEmpty(f)))
        {
            if (!File.Exists(f)) throw new FileNotFoundException($"runtime configuration {f} does not exist", f);
            result = result.Merge(Parse(File.ReadAllText(f!), f!));
        }
        return result;
    }

    public RuntimesConfig Merge(RuntimesConfig other) => new(
        Expected.Concat(other.Expected).Distinct().ToList(),
        other.Rootfs ?? Rootfs,
        Pythons.Concat(other.Pythons).ToList(),
        Runtimes.Where(r => other.Runtimes.All(o => o.Id != r.Id)).Concat(other.Runtimes).ToList());

    public static RuntimesConfig Parse(string json, string source)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException($"{source}: expected a JSON object");
        var expected = root["expected"]?.AsArray().Select(n => n!.GetValue<string>()).ToList() ?? [];
        var pythons = new List<string>();
        var runtimes = new List<Runtime>();
        int i = 0;
        foreach (var node in root["runtimes"]?.AsArray() ?? [])
        {
            var o = node as JsonObject ?? throw new FormatException($"{source}: runtimes[{i}] is not an object");
            if (o["python"] is { } py) pythons.Add(py.GetValue<string>());
            else runtimes.Add(ParseRuntime(o, $"{source}: runtimes[{i}]"));
            i++;
        }
        return new RuntimesConfig(expected, root["rootfs"]?.GetValue<string>(), pythons, runtimes);
    }

    private static Runtime ParseRuntime(JsonObject o, string where)
    {
        string Req(string name) => o[name]?.GetValue<string>() ?? throw new FormatException($"{where}: missing \"{name}\"");
        var id = Req("id");
        var kind = Req("kind");
        if (!id.StartsWith(kind + "-", StringComparison.Ordinal))
            throw new FormatException($"{where}: id \"{id}\" must begin with its kind, as in \"{kind}-<major>.<minor>\"");
        var command = o["command"]?.AsArray().Select(n => n!.GetValue<string>()).ToArray()
                      ?? throw new FormatException($"{where}: missing \"command\"");
        if (command.Length == 0) throw new FormatException($"{where}: \"command\" is empty");
        var env = o["env"]?.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>()) ?? [];
        return new Runtime(id, kind, Req("version"), o["device"]?.GetValue<string>() ?? "cpu", new Launch(command, env), Where: "runtimes.json");
    }
}
