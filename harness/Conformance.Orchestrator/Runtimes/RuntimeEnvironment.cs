using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Runtimes;

/// <summary>
/// Where runtimes live (<c>environments.json</c>): the host, or a Debian suite rootfs that
/// scripts/rootfs.sh provisions. Provisioning and discovery read the same file.
/// </summary>
public sealed record RuntimeEnvironment(string Id, string Kind, string? Suite, string? Path, IReadOnlyList<string> Packages, IReadOnlyList<EnvironmentRuntime> Runtimes)
{
    public bool IsRootfs => Kind == "rootfs";

    public static IReadOnlyList<RuntimeEnvironment> Load(string file, string? trixieOverride = null)
    {
        if (!File.Exists(file)) return [];
        var root = JsonNode.Parse(File.ReadAllText(file)) ?? throw new FormatException($"{file}: empty");
        var list = new List<RuntimeEnvironment>();
        foreach (var e in root["environments"]?.AsArray() ?? [])
        {
            string Req(string name) => e?[name]?.GetValue<string>() ?? throw new FormatException($"{file}: an environment lacks \"{name}\"");
            var id = Req("id");
            var path = e!["path"]?.GetValue<string>();
            // CONFORMANCE_ROOTFS (or runtimes.json's "rootfs") moves the TorchSharp rootfs, as scripts/rootfs.sh does.
            if (id == "trixie" && trixieOverride is not null) path = trixieOverride;
            list.Add(new RuntimeEnvironment(id, Req("kind"), e["suite"]?.GetValue<string>(), path,
                (e["packages"]?.AsArray() ?? []).Select(p => p!.GetValue<string>()).ToList(),
                (e["runtimes"]?.AsArray() ?? []).Select(r => new EnvironmentRuntime(r!["kind"]!.GetValue<string>(), r["python"]?.GetValue<string>())).ToList()));
        }
        return list;
    }
}
