using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.KnownFailures;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Matrix;

public sealed record RunnerOptions(string ArtifactsDir, TimeSpan RequestTimeout, TimeSpan StartTimeout, long Seed = 0)
{
    public static RunnerOptions Default(string artifactsDir) =>
        new(artifactsDir, TimeSpan.FromSeconds(120), TimeSpan.FromSeconds(180));
}

/// <summary>A runtime as the run saw it: discovery's view, its hello, and its listing per case.</summary>
public sealed record RuntimeReport(Runtime Runtime, JsonNode? Hello, IReadOnlyDictionary<string, JsonNode?> Listings, string? Error);

public sealed record RunResult(
    IReadOnlyList<RuntimeReport> Runtimes,
    IReadOnlyList<CellResult> Results,
    IReadOnlyList<KnownFailure> UnmatchedKnownFailures,
    DateTimeOffset Started,
    double Seconds)
{
    public int Count(Outcome o) => Results.Count(r => r.Outcome == o);

    /// <summary>The run's one closing line, in the manner of protobuf's conformance runner.</summary>
    public string SummaryLine()
    {
        bool passed = Count(Outcome.Fail) == 0 && UnmatchedKnownFailures.Count == 0;
        return $"CONFORMANCE SUITE {(passed ? "PASSED" : "FAILED")}: {Count(Outcome.Pass)} passes, {Count(Outcome.KnownFailure)} known failures, "
               + $"{Count(Outcome.Fail)} unexpected failures, {Count(Outcome.Skipped)} skips, {Count(Outcome.NotApplicable)} not applicable"
               + (UnmatchedKnownFailures.Count > 0 ? $", {UnmatchedKnownFailures.Count} known-failure entries matching no cell" : "")
               + $" ({Seconds:0.0} s)";
    }
}

/// <summary>
/// Runs the matrix: for each (case, route, producer) one artifact is produced, then every consumer
/// loads it in each of its modes, and <see cref="Judge"/> decides. A producer's or consumer's crash,
/// hang or error fails only the cells it touches; the rest of the matrix goes on.
/// </summary>
public sealed class MatrixRunner(IReadOnlyList<Runtime> runtimes, KnownFailureList knownFailures, RunnerOptions options, WorkerPool pool,
    IReadOnlyList<GoldenFixture>? goldens = null)
{
    private readonly Dictionary<string, Runtime> _byId = runtimes.ToDictionary(r => r.Id);
    private readonly IReadOnlyList<GoldenFixture> _goldens = goldens ?? [];

    public RunResult Run(IReadOnlyList<Cell> cells, Action<CellResult, int, int>? progress = null)
    {
        var started = DateTimeOffset.Now;
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(options.ArtifactsDir);
        // The seed's listing (state_dict keys and sizes, optimizer state_dict) of each runtime.
        var reports = ListRuntimes(cells.Any(c => c.Case == "lenet") ? ["lenet"] : []);
        var results = new List<CellResult>();
        foreach (var group in cells.GroupBy(c => c.ArtifactKey))
        {
            foreach (var r in RunArtifact(group.ToList()))
            {
                var judged = knownFailures.Apply(r);
                results.Add(judged);
                progress?.Invoke(judged, results.Count, cells.Count);
            }
        }
        return new RunResult(reports, results, knownFailures.Unmatched(cells), started, clock.Elapsed.TotalSeconds);
    }

    private List<RuntimeReport> ListRuntimes(IReadOnlyList<string> cases)
    {
        var list = new List<RuntimeReport>();
        foreach (var rt in runtimes)
        {
            if (!rt.Available) { list.Add(new RuntimeReport(rt, null, new Dictionary<string, JsonNode?>(), rt.MissingReason)); continue; }
            var listings = new Dictionary<string, JsonNode?>();
            string? error = null;
            foreach (var c in cases)
            {
                var reply = pool.Send(rt, Ops.Listing, new JsonObject { ["case"] = c, ["seed"] = options.Seed }, options.RequestTimeout);
                listings[c] = reply.Result;
                error ??= reply.Result is null ? Describe(reply, null) : null;
            }
            list.Add(new RuntimeReport(rt, pool.Hellos.GetValueOrDefault(rt.Id), listings, error));
        }
        return list;
    }

    private IEnumerable<CellResult> RunArtifact(IReadOnlyList<Cell> cells)
    {
        var first = cells[0];
        if (GoldenFixture.IsGolden(first.Producer))
        {
            foreach (var r in RunGolden(cells)) yield return r;
            yield break;
        }
        var producer = _byId[first.Producer];
        if (!producer.Available)
        {
            foreach (var c in cells) yield return new CellResult(c, Outcome.Skipped, $"producer {producer.Id} is missing: {producer.MissingReason}");
            yield break;
        }
        var path = ArtifactPath(first);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path)) File.Delete(path);
        var clock = Stopwatch.StartNew();
        var spec = Catalogue.Case(first.Case);
        var produced = ProduceArtifact(pool, runtimes, spec, first.Route, producer, path, options);
        if (produced.Result is not { } producedObs)
        {
            var notApplicable = produced is WorkerReply.Answered { Response.Error.Kind: ErrorKinds.NotApplicable };
            var why = $"producer {producer.Id} could not save: {Describe(produced, path)}";
            foreach (var c in cells) yield return new CellResult(c, notApplicable ? Outcome.NotApplicable : Outcome.Fail, why, Artifact: path);
            yield break;
        }
        var produceSeconds = clock.Elapsed.TotalSeconds;
        foreach (var r in ConsumeAll(cells, path, producedObs, produceSeconds)) yield return r;
    }

    /// <summary>Consumers load a kept fixture (a copy, so the original stays intact) and are judged against its manifest.</summary>
    private IEnumerable<CellResult> RunGolden(IReadOnlyList<Cell> cells)
    {
        var first = cells[0];
        var golden = _goldens.Single(g => g.ProducerId == first.Producer && g.Case == first.Case && g.Route == first.Route);
        var path = ArtifactPath(first);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Copy(golden.ArtifactPath, path, overwrite: true);
        JsonNode expected;
        try
        {
            expected = golden.ExpectedNode();
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidDataException or NullReferenceException)
        {
            return cells.Select(c => new CellResult(c, Outcome.Fail, $"fixture_error: {golden.ObservationPath}: {e.Message}", Artifact: path)).ToList();
        }
        return ConsumeAll(cells, path, expected, 0);
    }

    /// <summary>Every consumer cell of one artifact, judged against the producer's observation, parsed once.</summary>
    private IReadOnlyList<CellResult> ConsumeAll(IReadOnlyList<Cell> cells, string path, JsonNode expectedNode, double produceSeconds)
    {
        Observation expected;
        try
        {
            expected = Observation.FromJson(expectedNode);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            return cells.Select(c => new CellResult(c, Outcome.Fail, $"protocol_error: producer {c.Producer} sent a malformed observation: {e.Message}", Artifact: path)).ToList();
        }
        return cells.Select(c => Consume(c, path, expectedNode, expected, produceSeconds)).ToList();
    }

    private CellResult Consume(Cell cell, string path, JsonNode expectedNode, Observation expected, double produceSeconds)
    {
        var consumer = _byId[cell.Consumer];
        if (!consumer.Available)
            return new CellResult(cell, Outcome.Skipped, $"consumer {consumer.Id} is missing: {consumer.MissingReason}", Artifact: path);
        var spec = Catalogue.Case(cell.Case);
        var clock = Stopwatch.StartNew();
        var reply = spec.IsCheckpoint
            ? pool.Send(consumer, Ops.ConsumeCheckpoint,
                new JsonObject { ["case"] = cell.Case, ["optimizer"] = spec.Optimizer, ["mode"] = cell.Mode, ["path"] = path }, options.RequestTimeout)
            : pool.Send(consumer, Ops.Consume,
                new JsonObject { ["case"] = cell.Case, ["route"] = cell.Route, ["mode"] = cell.Mode, ["path"] = path }, options.RequestTimeout);
        var seconds = produceSeconds + clock.Elapsed.TotalSeconds;
        var notApplicable = reply is WorkerReply.Answered { Response.Error.Kind: ErrorKinds.NotApplicable };

        if (cell.Mode == Catalogue.ShapeMismatchMode && spec.Mismatch is { } mismatch && !notApplicable)
        {
            // The load is meant to fail: the verdict is on the error's evidence.
            var loadError = reply is WorkerReply.Answered { Response.Error: { Kind: ErrorKinds.LoadError } e } ? StripPath(e.Message, path) : null;
            if (reply is WorkerReply.Failed f) return new CellResult(cell, Outcome.Fail, Describe(f, path), Artifact: path, Seconds: seconds);
            var v = Judge.CompareMismatchError(loadError, mismatch);
            return new CellResult(cell, v.Passed ? Outcome.Pass : Outcome.Fail, v.Passed ? $"refused as expected: {loadError}" : v.Summary,
                Problems: v.Problems, Artifact: path, Seconds: seconds);
        }
        var archiveVersion = expectedNode["archive_version"]?.GetValue<string>();
        if (reply.Result is not { } obs)
        {
            // A refused TorchScript archive carries its version record as evidence.
            var why = Describe(reply, path) + (archiveVersion is null ? "" : $" [archive version record {archiveVersion}]");
            return new CellResult(cell, notApplicable ? Outcome.NotApplicable : Outcome.Fail, why, Artifact: path, Seconds: seconds) { ArchiveVersion = archiveVersion };
        }

        var tolerance = spec.Tolerance;
        Observation actual;
        CheckpointVerdict? checkpoint = null;
        try
        {
            actual = Observation.FromJson(obs);
            if (spec.IsCheckpoint) checkpoint = CheckpointJudge.Compare(expectedNode, obs);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            return new CellResult(cell, Outcome.Fail, $"protocol_error: consumer {consumer.Id} sent a malformed observation: {e.Message}", Artifact: path, Seconds: seconds);
        }
        var verdict = cell.Mode == Catalogue.StrictFalse && spec.Partial is { } partial
            ? Judge.ComparePartial(expected, actual, partial)
            : Judge.Compare(expected, actual, tolerance);
        var problems = verdict.Problems.ToList();
        if (checkpoint is not null)
        {
            // For a checkpoint the "outputs" are the parameters after resuming K more steps.
            problems = problems.Select(p => p.StartsWith("outputs:", StringComparison.Ordinal) ? "resumed parameters:" + p["outputs:".Length..] : p).ToList();
            problems.InsertRange(0, checkpoint.Problems);
        }
        double? trainEval = actual.TrainOutputs is { } t && actual.Outputs is { } o && t.Values.Count == o.Values.Count
            ? Judge.CompareOutputs(o.Values, t.Values, new Tolerance(0, 0)).MaxAbs
            : null;
        if (spec.TrainModeMatters && cell.Mode != Catalogue.StrictFalse && trainEval is 0)
        {
            // Before a key-order finding, which always comes last.
            int order = problems.FindIndex(p => p.StartsWith("key order differs", StringComparison.Ordinal));
            problems.Insert(order < 0 ? problems.Count : order, "train-mode outputs equal eval-mode outputs: the mode switch took no effect");
        }
        var passed = problems.Count == 0;
        var notes = checkpoint is { Notes.Count: > 0 } ? "notes: " + string.Join("; ", checkpoint.Notes) : "";
        return new CellResult(cell, passed ? Outcome.Pass : Outcome.Fail, passed ? notes : new Verdict(false, problems, null).Summary,
            verdict.Diff, problems, Artifact: path, Seconds: seconds) { TrainEvalDiff = trainEval, ArchiveVersion = archiveVersion };
    }

    /// <summary>
    /// Asks <paramref name="producer"/> for the artifact. TorchSharp cannot script or trace a C#
    /// module: for TorchScript routes it retrains a ScriptModule that the oldest available PyTorch
    /// runtime made first (written beside the artifact as *.source.pt).
    /// </summary>
    public static WorkerReply ProduceArtifact(WorkerPool pool, IReadOnlyList<Runtime> runtimes, CaseSpec spec, string route, Runtime producer, string path, RunnerOptions options)
    {
        var args = ProduceArgs(spec, route, path, options.Seed);
        if (Catalogue.IsTorchScript(route) && producer.Kind == RuntimeKinds.TorchSharp)
        {
            var maker = runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderBy(r => r.Id, StringComparer.Ordinal).FirstOrDefault();
            if (maker is null)
                return new WorkerReply.Failed(WorkerReply.StartError, "no PyTorch runtime to make the source ScriptModule that TorchSharp retrains");
            var source = Path.ChangeExtension(path, ".source.pt");
            var made = pool.Send(maker, Ops.Produce, ProduceArgs(spec, route, source, options.Seed), options.RequestTimeout);
            if (made.Result is null) return made;
            args["source"] = source;
        }
        return pool.Send(producer, ProduceOp(spec), args, options.RequestTimeout);
    }

    /// <summary>The op that makes a case's artifact: a trained state dict, or a training checkpoint.</summary>
    public static string ProduceOp(CaseSpec c) => c.IsCheckpoint ? Ops.ProduceCheckpoint : Ops.Produce;

    public static JsonObject ProduceArgs(CaseSpec c, string route, string path, long seed) => c.IsCheckpoint
        ? new JsonObject { ["case"] = c.Name, ["optimizer"] = c.Optimizer, ["path"] = path, ["seed"] = seed }
        : new JsonObject { ["case"] = c.Name, ["route"] = route, ["path"] = path, ["seed"] = seed };

    /// <summary>artifacts/&lt;case&gt;/&lt;route&gt;/&lt;producer&gt;.&lt;ext&gt;</summary>
    public string ArtifactPath(Cell cell) =>
        Path.Combine(options.ArtifactsDir, cell.Case, cell.Route, cell.Producer + Extension(cell.Route));

    public static string Extension(string route) => route switch
    {
        Catalogue.Pickle or Catalogue.PickleLegacy or Catalogue.PickledModel or Catalogue.Checkpoint => ".pt",
        Catalogue.Safetensors => ".safetensors",
        _ => ".bin",
    };

    /// <summary>"kind: message", with the artifact's path dropped from the front (it is recorded apart).</summary>
    public static string Describe(WorkerReply reply, string? path) => reply switch
    {
        WorkerReply.Answered { Response.Error: { } e } => $"{e.Kind}: {StripPath(e.Message, path)}",
        WorkerReply.Failed f => $"{f.Kind}: {f.Message}",
        _ => "no result",
    };

    private static string StripPath(string message, string? path) =>
        path is not null && message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;
}
