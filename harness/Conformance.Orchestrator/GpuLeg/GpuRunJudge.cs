using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;

namespace Conformance.Orchestrator.GpuLeg;

/// <summary>
/// Judges what a GPU run observed with the matrix's own judge: each raw reply in <c>gpu-run.json</c>
/// goes through <see cref="CellJudge"/> against the fixture's observation, then through the
/// <see cref="FailureLedger"/>, exactly as <see cref="MatrixRunner"/> does with a live worker's reply.
/// The GPU machine only observes; a GPU run judged once is judged again, with no GPU, after a change
/// to the judge or the ledger.
/// </summary>
public static class GpuRunJudge
{
    /// <param name="repoRoot">Where the committed fixture sets (<c>fixtures/&lt;id&gt;/</c>) are: the observations the device's replies are judged against.</param>
    public static RunResult Judge(GpuArchive archive, string repoRoot, FailureLedger ledger, DateOnly today)
    {
        var run = archive.Run;
        var runtime = run["runtime"] ?? throw new InvalidDataException($"{archive.Source}: gpu-run.json has no \"runtime\"");
        var rid = runtime["id"]!.GetValue<string>();
        var label = JudgedBy(archive);
        var results = new List<CellResult>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var items = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in run["observations"]?.AsArray().OfType<JsonObject>() ?? []) BeforeLibraries.Upgrade(o);
        foreach (var o in run["observations"]?.AsArray().OfType<JsonObject>() ?? [])
        {
            var cell = Cell.Parse(o["cell"]!.GetValue<string>());
            // A produce item is named like its own set's default cell: an artifact written is no row, one that failed is that cell's.
            if (!items.Add($"{o["op"]?.GetValue<string>()} {cell.Name}"))
                throw new InvalidDataException($"{archive.Source}: cell {cell.Name} is observed twice in gpu-run.json");
            CellResult? raw;
            try { raw = Observe(archive, repoRoot, rid, cell, o); }
            catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException or KeyNotFoundException or System.Text.Json.JsonException)
            {
                raw = new CellResult(cell, Outcome.Fail, $"gpu-run.json's record of this cell is malformed: {e.Message}")
                {
                    Problems = [new Problem(ProblemCodes.ProtocolError, rid, $"gpu-run.json's record of this cell is malformed: {e.Message}")],
                };
            }
            if (raw is null) continue;
            if (!seen.Add(cell.Name))
                throw new InvalidDataException($"{archive.Source}: cell {cell.Name} has two results in gpu-run.json (a failed artifact and a load of it)");
            results.Add(Apply(ledger, raw) with { JudgedBy = label });
        }
        foreach (var missing in Unobserved(archive, repoRoot, rid, seen))
            results.Add(Apply(ledger, missing) with { JudgedBy = label });

        var hello = runtime["hello"]?.DeepClone();
        var rt = new Runtime(rid, runtime["kind"]?.GetValue<string>() ?? RuntimeKinds.PyTorch, runtime["version"]?.GetValue<string>() ?? "",
            runtime["device"]?.GetValue<string>() ?? "cuda", new Launch(runtime["launch"]?.GetValue<string>() ?? "gpu-check"), null,
            $"gpu-check on {run["device"]?["gpu"]?.GetValue<string>() ?? "a simulated device"}");
        var started = DateTimeOffset.TryParse(run["generated"]?.GetValue<string>(), out var g) ? g : default;
        var cases = run["cases"] is JsonArray cs ? string.Join(",", cs.Select(c => c!.GetValue<string>())) : null;
        // Only the expiry rule applies to a part of the matrix; the whole-run rules stay with a complete run (merge checks them on the union).
        var errors = ledger.Check(results, complete: false, today);
        return new RunResult([new RuntimeReport(rt, hello, new Dictionary<string, JsonNode?>(), null)], results, errors, started, run["seconds"]?.GetValue<double>() ?? 0)
        {
            Selection = new Selection(Case: cases, Runtime: rid),
        };
    }

    /// <summary>The label every judged row carries, so a merged report says which GPU run and which judge.</summary>
    public static string JudgedBy(GpuArchive archive)
    {
        var device = archive.Run["device"];
        var gpu = device?["gpu"]?.GetValue<string>() ?? "no GPU (simulated on the CPU)";
        var date = archive.Run["generated"]?.GetValue<string>()?.Split('T')[0] ?? "an unknown date";
        return $"conformance judge-gpu (Judgement/, the matrix's judge) on gpu-check's raw replies: {gpu}, {date}, archive {Path.GetFileName(archive.Source)} sha256 {archive.Sha256[..12]}";
    }

    private static CellResult Apply(FailureLedger ledger, CellResult raw) => raw.Outcome == Outcome.Skipped ? raw : ledger.Apply(raw);

    /// <summary>One observation's raw verdict; null for an artifact the device wrote (its cells are the consume ones) or one it could not write by design.</summary>
    private static CellResult? Observe(GpuArchive archive, string repoRoot, string rid, Cell cell, JsonObject o)
    {
        var seconds = o["seconds"]?.GetValue<double>() ?? 0;
        var devicePath = o["path"]?.GetValue<string>();
        var artifact = o["artifact"]!.GetValue<string>();
        if (o["skipped"] is { } why) return new CellResult(cell, Outcome.Skipped, $"skipped: {why.GetValue<string>()}", Artifact: artifact);
        var reply = ReplyOf(o);
        if (o["op"]!.GetValue<string>() == "produce")
        {
            if (o["written"] is not null || CellJudge.IsNotApplicable(reply!)) return null;
            return Result(cell, CellJudge.ProducerFailed(cell.Producer, reply!, devicePath ?? artifact), artifact, seconds);
        }
        var spec = Catalogue.Case(cell.Case);
        var set = o["set"]!.GetValue<string>();
        var manifest = Path.ChangeExtension(Path.Combine(set == rid ? archive.Root : repoRoot, artifact), ".json");
        JsonNode expectedNode;
        Observation expected;
        try
        {
            var bytes = File.ReadAllBytes(manifest);
            var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
            if (o["manifest_sha256"]?.GetValue<string>() is { } was && was != sha)
                return Result(cell, CellJudge.Failed(new Problem(ProblemCodes.FixtureError, manifest,
                    $"{manifest}: this observation changed since the GPU run (sha256 {was[..12]}… then, {sha[..12]}… now): run gpu-check again")), artifact, seconds);
            expectedNode = (JsonNode.Parse(bytes) ?? throw new InvalidDataException("empty"))["observation"] ?? throw new InvalidDataException("no \"observation\"");
            expected = Observation.FromJson(expectedNode);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return Result(cell, CellJudge.Failed(new Problem(ProblemCodes.FixtureError, manifest, $"{manifest}: {e.Message}")), artifact, seconds);
        }
        var verdict = CellJudge.Judge(cell, spec with { Tolerance = Catalogue.ToleranceFor(spec, cell) }, expectedNode, expected, reply!, devicePath ?? artifact);
        return Result(cell, verdict, artifact, seconds) with { ArchiveVersion = expectedNode["archive_version"]?.GetValue<string>() };
    }

    /// <summary>The worker's reply as the orchestrator would have received it, or what gpu-check's parent saw instead.</summary>
    private static Reply? ReplyOf(JsonObject o)
    {
        if (o["reply"] is JsonObject r) return new Reply.Answered(Wire.Decode<Response>(r.ToJsonString()));
        if (o["failure"] is JsonObject f) return new Reply.Failed(f["kind"]!.GetValue<string>(), f["message"]!.GetValue<string>());
        return o["written"] is not null ? null : throw new InvalidOperationException("neither \"reply\", \"failure\", \"skipped\" nor \"written\"");
    }

    private static CellResult Result(Cell cell, CellVerdict v, string artifact, double seconds) =>
        new(cell, v.Outcome, v.Message, v.Diff, Artifact: artifact, Seconds: seconds) { Problems = v.Problems, TrainEvalDiff = v.TrainEvalDiff };

    /// <summary>
    /// The cells the catalogue plans for each fixture set the GPU run met that it did not observe (a set
    /// or a case added since, a mode gpu-check's plan lacks): skipped, each named, never silently absent.
    /// </summary>
    private static IEnumerable<CellResult> Unobserved(GpuArchive archive, string repoRoot, string rid, HashSet<string> seen)
    {
        var notOnDevice = (archive.Run["not_on_device"] as JsonObject ?? []).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
        var only = archive.Run["cases"] is JsonArray cs ? cs.Select(c => c!.GetValue<string>()).ToHashSet(StringComparer.Ordinal) : null;
        var sets = (archive.Run["observations"]?.AsArray().OfType<JsonObject>() ?? []).Select(o => o["set"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        // The device's own set is in the archive, the committed ones in the checkout: each folder listed once.
        var fixtures = GoldenFixtures.Find(Path.Combine(archive.Root, "fixtures")).Where(f => f.Producer == rid)
            .Concat(GoldenFixtures.Find(Path.Combine(repoRoot, "fixtures")).Where(f => f.Producer != rid));
        foreach (var f in fixtures.Where(f => sets.Contains(f.Producer)))
        {
            var set = f.Producer;
            var producer = set == rid ? rid : set + GoldenFixture.Suffix;
            if (notOnDevice.Contains(f.Case) || only is not null && !only.Contains(f.Case)) continue;
            var spec = Catalogue.All.FirstOrDefault(c => c.Name == f.Case);
            if (spec is null || !spec.Routes.Contains(f.Route)) continue;
            foreach (var mode in Catalogue.LoadModes(spec, RuntimeKinds.PyTorch, f.Route))
            {
                var cell = new Cell(f.Case, f.Route, producer, rid, mode);
                if (!seen.Contains(cell.Name))
                    yield return new CellResult(cell, Outcome.Skipped, "skipped: the GPU run did not observe this cell (it predates the fixture, the case or the mode): run gpu-check again",
                        Artifact: Path.GetRelativePath(set == rid ? archive.Root : repoRoot, f.ArtifactPath));
            }
        }
    }
}
