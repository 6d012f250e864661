using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// A golden artifact kept in the repository, one folder per producer version:
/// <c>fixtures/pytorch-1.13/lenet.pickle.pt</c> with its producer's observation beside it
/// (<c>lenet.pickle.json</c>). Consumers are judged against it exactly as against a live producer,
/// so a consumer upgrade is tested against what older producers really wrote, even where that
/// producer version is no longer installed. Its producer id in cell names is <c>pytorch-1.13@golden</c>.
/// </summary>
public sealed record GoldenFixture(string Producer, string Case, string Route, string ArtifactPath)
{
    public const string Suffix = "@golden";

    public string ProducerId => Producer + Suffix;

    public string ObservationPath => Path.ChangeExtension(ArtifactPath, ".json");

    public JsonNode ExpectedNode()
    {
        var node = JsonNode.Parse(File.ReadAllText(ObservationPath))
                   ?? throw new InvalidDataException($"{ObservationPath}: empty observation");
        return node["observation"] ?? throw new InvalidDataException($"{ObservationPath}: no \"observation\"");
    }

    public Observation Expected() => Observation.FromJson(ExpectedNode());

    public static bool IsGolden(string producer) => producer.EndsWith(Suffix, StringComparison.Ordinal);
}

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

    /// <summary>
    /// Regenerates the fixtures of every available runtime (<c>make fixtures</c>): each producer
    /// trains and saves as in the matrix, and its observation is written beside the artifact.
    /// </summary>
    /// <param name="only">Runtime ids to write (a new PyTorch version's set, leaving the committed ones untouched); null: all.</param>
    /// <param name="cases">Case names to write (a newly added case, leaving the other files untouched); null: every golden case.</param>
    public static IReadOnlyList<string> Write(IReadOnlyList<Runtime> runtimes, string fixturesDir, RunnerOptions options, Action<string>? onError = null,
        IReadOnlyCollection<string>? only = null, IReadOnlyCollection<string>? cases = null, IReadOnlyCollection<string>? routes = null)
    {
        var written = new List<string>();
        using var pool = new WorkerPool(options.StartTimeout, options.WorkerEnvironment);
        foreach (var rt in runtimes.Where(r => r.Available && (only is null || only.Contains(r.Id))))
        foreach (var c in Catalogue.All.Where(c => c.Golden && (cases is null || cases.Contains(c.Name))))
        foreach (var route in Catalogue.RoutesOf(c).Where(r => routes is null || routes.Count == 0 || routes.Contains(r)))
        {
            var dir = Path.Combine(fixturesDir, rt.Id);
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"{c.Name}.{route}{Catalogue.ExtensionOf(route)}");
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true); // a folder fixture is written afresh
            var reply = MatrixRunner.ProduceArtifact(pool, runtimes, c, route, rt, path, options);
            var source = Path.ChangeExtension(path, ".source.pt");
            if (File.Exists(source)) File.Delete(source);
            if (reply.Result is not { } obs)
            {
                // A route this producer cannot write (not_applicable) has no fixture; anything else is an error.
                if (reply is WorkerReply.Answered { Response.Error.Kind: ErrorKinds.NotApplicable }) { MatrixRunner.RemovePartial(path); continue; }
                onError?.Invoke($"{rt.Id} could not produce {path}: {Judgement.CellJudge.FromReply(reply, path, rt.Id).Line}");
                MatrixRunner.RemovePartial(path); // a folder a producer began and could not finish is no fixture
                continue;
            }
            var manifest = new JsonObject
            {
                ["producer"] = rt.Id,
                ["producer_version"] = pool.Hellos.GetValueOrDefault(rt.Id)?["version"]?.DeepClone(),
                ["case"] = c.Name,
                ["route"] = route,
                ["seed"] = options.Seed,
                ["observation"] = obs.DeepClone(),
            };
            DurableFile.WriteText(Path.ChangeExtension(path, ".json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            written.Add(path);
        }
        return written;
    }
}
