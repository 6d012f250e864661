using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Runs;

/// <summary><c>make fixtures</c>: the golden fixture sets, each producer saving as in the matrix, its observation beside each artifact.</summary>
public static class GoldenFixtureWriter
{
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
        foreach (var route in Catalogue.RoutesOf(c).Where(r => Planner.Meets(rt, r) && (routes is null || routes.Count == 0 || routes.Contains(r))))
        {
            var dir = Path.Combine(fixturesDir, rt.Id);
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"{c.Name}.{route}{Catalogue.ExtensionOf(route)}");
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true); // a folder fixture is written afresh
            var reply = ProducerRequests.ProduceArtifact(pool, runtimes, c, route, rt, path, options);
            var source = Path.ChangeExtension(path, ".source.pt");
            if (File.Exists(source)) File.Delete(source);
            if (reply.Result is not { } obs)
            {
                // A route this producer cannot write (not_applicable) has no fixture; anything else is an error.
                if (reply is Reply.Answered { Response.Error.Kind: ErrorKinds.NotApplicable }) { ArtifactFiles.RemovePartial(path); continue; }
                onError?.Invoke($"{rt.Id} could not produce {path}: {CellJudge.FromReply(reply, path, rt.Id).Line}");
                ArtifactFiles.RemovePartial(path); // a folder a producer began and could not finish is no fixture
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
            DurableFile.WriteText(Path.ChangeExtension(path, ".json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
            written.Add(path);
        }
        return written;
    }
}
