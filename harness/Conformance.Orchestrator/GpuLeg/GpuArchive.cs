using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.GpuLeg;

/// <summary>
/// What <c>gpu-check</c> brought back from a GPU machine, unpacked: <c>gpu-run.json</c> (the device's
/// facts and every cell's raw reply) and the fixture set it produced there, <c>fixtures/&lt;id&gt;/</c>.
/// </summary>
/// <param name="Source">The archive as the user named it.</param>
/// <param name="Root">The folder it was unpacked into: <c>gpu-run.json</c> and <c>fixtures/</c>.</param>
/// <param name="Sha256">The archive's SHA-256, so a report says which GPU run it judged.</param>
public sealed record GpuArchive(string Source, string Root, JsonObject Run, string Sha256)
{
    public const string RunFile = "gpu-run.json";
    public const string Schema = "gpu-run/1";

    /// <summary>
    /// Unpacks <paramref name="archive"/> into <paramref name="into"/> (emptied first). Only
    /// <c>gpu-run.json</c> and regular files under <c>fixtures/</c> are taken; any other name, a link,
    /// an absolute path or a <c>..</c> is refused, naming the entry.
    /// </summary>
    /// <exception cref="InvalidDataException">Not a gpu-check archive, naming the file and what is wrong.</exception>
    public static GpuArchive Open(string archive, string into)
    {
        if (!File.Exists(archive)) throw new InvalidDataException($"{archive}: no such file");
        if (Directory.Exists(into)) Directory.Delete(into, recursive: true);
        Directory.CreateDirectory(into);
        string sha;
        using (var f = File.OpenRead(archive)) sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
        try
        {
            using var gz = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            while (tar.GetNextEntry() is { } e)
            {
                if (e.EntryType == TarEntryType.Directory) continue;
                var name = e.Name.Replace('\\', '/');
                var parts = name.Split('/');
                if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                    || Path.IsPathRooted(name) || parts.Any(p => p is ".." or "." or "")
                    || !(name == RunFile || parts[0] == "fixtures" && parts.Length >= 3))
                    throw new InvalidDataException($"{archive}: entry \"{e.Name}\" ({e.EntryType}) is not part of a gpu-check archive (gpu-run.json, fixtures/<id>/…)");
                var target = Path.Combine(into, Path.Combine(parts));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                e.ExtractToFile(target, overwrite: false);
            }
        }
        catch (Exception e) when (e is InvalidDataException && !e.Message.StartsWith(archive, StringComparison.Ordinal) || e is FormatException or EndOfStreamException)
        {
            throw new InvalidDataException($"{archive}: not a readable .tar.gz ({e.Message})", e);
        }
        var runPath = Path.Combine(into, RunFile);
        if (!File.Exists(runPath))
            throw new InvalidDataException($"{archive}: holds no {RunFile}: it was made by a gpu-check that judged on the device (an old archive), or it is not a gpu-check archive");
        JsonObject run;
        try
        {
            run = JsonNode.Parse(File.ReadAllText(runPath)) as JsonObject ?? throw new InvalidDataException($"{archive}: {RunFile} is not a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"{archive}: {RunFile} is not JSON: {e.Message}", e);
        }
        if (run["schema"]?.GetValue<string>() != Schema)
            throw new InvalidDataException($"{archive}: {RunFile} has schema \"{run["schema"]}\"; this orchestrator reads \"{Schema}\"");
        return new GpuArchive(archive, into, run, sha);
    }
}
