using System.Diagnostics;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Orchestrator.Runs;

/// <summary>
/// Runs the matrix: for each (case, route, producer) one artifact is produced, then every consumer
/// loads it in each of its modes. It collects observations; <see cref="CellJudge"/> decides and the
/// <see cref="Ledger"/> declares. A producer's or consumer's crash, hang or error fails only the
/// cells it touches; the rest of the matrix goes on.
/// </summary>
public sealed class MatrixRunner(IReadOnlyList<Runtime> runtimes, FailureLedger ledger, RunnerOptions options, WorkerPool pool,
    IReadOnlyList<GoldenFixture>? goldens = null, IReadOnlyList<Runtime>? awaitingDevice = null)
{
    private readonly Dictionary<string, Runtime> _byId = runtimes.Concat(awaitingDevice ?? []).ToDictionary(r => r.Id);

    /// <summary>The side of a cell that needs a device backend this machine cannot have (TorchSharp on CUDA), if any.</summary>
    private Runtime? Awaiting(Cell c) =>
        _byId.GetValueOrDefault(c.Producer) is { AwaitsDevice: true } p ? p : _byId.GetValueOrDefault(c.Consumer) is { AwaitsDevice: true } q ? q : null;

    /// <summary>Such a cell is skipped whatever its other side did (a producer that could not save): no ledger, no failure, named in the summary.</summary>
    private bool AwaitsDevice(CellResult r) => Awaiting(r.Cell) is not null;

    private CellResult SkipAwaiting(CellResult r) => Awaiting(r.Cell) is { } a && r.Outcome != Outcome.Skipped
        ? new CellResult(r.Cell, Outcome.Skipped, $"{(a.Id == r.Cell.Consumer ? "consumer" : "producer")} {a.Id} is missing: {a.MissingReason}", Artifact: r.Artifact)
        : r;
    private readonly IReadOnlyList<GoldenFixture> _goldens = goldens ?? [];

    public RunResult Run(IReadOnlyList<Cell> cells, Action<CellResult, int, int>? progress = null, Selection? selection = null)
    {
        var started = DateTimeOffset.Now;
        var clock = Stopwatch.StartNew();
        // An artifacts folder that cannot be made fails each cell in Prepare, naming the path; not the run.
        try { Directory.CreateDirectory(options.ArtifactsDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        // The seed's listing (state_dict keys and sizes, optimizer state_dict) of each runtime.
        var reports = ListRuntimes(cells.Any(c => c.Case == "lenet") ? ["lenet"] : []);

        // Results are kept in plan order, whatever order the lanes finish in.
        var index = cells.Select((c, i) => (c.Name, i)).ToDictionary(x => x.Name, x => x.i);
        var results = new CellResult?[cells.Count];
        int finished = 0;
        var gate = new object();
        void Record(CellResult r)
        {
            CellResult judged;
            try { judged = AwaitsDevice(r) ? SkipAwaiting(r) : ledger.Apply(r); }
            catch (Exception e) { judged = Crashed(r.Cell, e); }
            lock (gate)
            {
                // A cell is recorded once: a late failure of its artifact does not overwrite it.
                if (results[index[r.Cell.Name]] is not null) return;
                results[index[r.Cell.Name]] = judged;
                try { progress?.Invoke(judged, ++finished, cells.Count); }
                catch (Exception e) when (e is IOException or InvalidOperationException) { /* a closed terminal must not lose the run */ }
            }
        }

        using (var lanes = new Lanes(options.Parallel))
        {
            foreach (var group in cells.GroupBy(c => c.ArtifactKey))
            {
                var list = group.ToList();
                var lane = GoldenFixture.IsGolden(list[0].Producer) ? "golden" : list[0].Producer;
                lanes.Post(lane, () =>
                {
                    // Each consumer's cells run on that consumer's lane, once the artifact exists.
                    try
                    {
                        var artifact = Prepare(list);
                        if (artifact.Failed is { } failed) { foreach (var r in failed) Record(r); return; }
                        foreach (var c in list)
                            lanes.Post(c.Consumer, () => Record(Guard(c, () => Consume(c, artifact.Path!, artifact.ExpectedNode!, artifact.Expected!, artifact.Seconds))));
                    }
                    catch (Exception e)
                    {
                        foreach (var c in list) Record(Crashed(c, e));
                    }
                });
            }
        }
        selection ??= Selection.All;
        var all = results.Select((r, i) => r ?? Crashed(cells[i], new InvalidOperationException("the cell never ran"))).ToList();
        var errors = ledger.Check(all.Where(r => !AwaitsDevice(r)).ToList(), selection.Complete, DateOnly.FromDateTime(DateTime.UtcNow));
        return new RunResult(reports, all, errors, started, clock.Elapsed.TotalSeconds) { Selection = selection, Options = options };
    }

    /// <summary>An orchestrator bug fails its cell with the evidence; it never takes the run down or loses a result.</summary>
    private static CellResult Crashed(Cell cell, Exception e) =>
        Result(cell, CellJudge.Failed(new Problem(ProblemCodes.RuntimeError, "orchestrator", $"orchestrator error: {e.GetType().Name}: {e.Message}")), null);

    private static CellResult Guard(Cell cell, Func<CellResult> run)
    {
        try { return run(); }
        catch (Exception e) { return Crashed(cell, e); }
    }

    /// <summary>An artifact ready for its consumers, or the results of the cells that cannot have one.</summary>
    private sealed record Artifact(IReadOnlyList<CellResult>? Failed, string? Path = null, JsonNode? ExpectedNode = null, Observation? Expected = null, double Seconds = 0);

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
                error ??= reply.Result is null ? CellJudge.FromReply(reply, null, rt.Id).Line : null;
            }
            list.Add(new RuntimeReport(rt, pool.Hellos.GetValueOrDefault(rt.Id), listings, error));
        }
        return list;
    }

    private static CellResult Result(Cell cell, CellVerdict v, string? artifact, double seconds = 0) =>
        new(cell, v.Outcome, v.Message, v.Diff, Artifact: artifact, Seconds: seconds) { Problems = v.Problems, TrainEvalDiff = v.TrainEvalDiff };

    private Artifact Prepare(IReadOnlyList<Cell> cells)
    {
        var first = cells[0];
        if (GoldenFixture.IsGolden(first.Producer)) return PrepareGolden(cells);
        var producer = _byId[first.Producer];
        if (!producer.Available)
            return new Artifact(cells.Select(c => new CellResult(c, Outcome.Skipped, $"producer {producer.Id} is missing: {producer.MissingReason}")).ToList());
        var path = ArtifactPath(first);
        var clock = Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path)) File.Delete(path);
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true); // a folder artifact (RealLayouts.IsFolder)
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A full disk or an unwritable artifacts folder fails these cells, not the run.
            return IoFailed(cells, path, $"orchestrator could not prepare {path}: {Errno.Cause(e)}");
        }
        var produced = ProducerRequests.ProduceArtifact(pool, runtimes, Catalogue.Case(first.Case), first.Route, producer, path, options);
        if (produced.Result is not { } producedObs)
        {
            var v = CellJudge.ProducerFailed(producer.Id, produced, path);
            // A producer that failed, or died, mid-save leaves nothing for anyone to mistake for an artifact.
            if (ArtifactFiles.RemovePartial(path) is { Count: > 0 } removed && v.Problems.Count > 0)
            {
                var note = $" (removed what it left: {string.Join(", ", removed)})";
                v = v with { Problems = [v.Problems[0] with { Message = v.Problems[0].Message + note }, .. v.Problems.Skip(1)], Message = v.Message + note };
            }
            return new Artifact(cells.Select(c => Result(c, v, path)).ToList());
        }
        // A producer that answers "saved" must have left a file: an empty or missing one is a save that lied.
        if (ArtifactFiles.ArtifactMissing(path) is { } missing)
        {
            var v = CellJudge.Failed(new Problem(ProblemCodes.SaveError, $"producer {producer.Id}", $"producer {producer.Id} reported a successful save, but {path} {missing}"));
            return new Artifact(cells.Select(c => Result(c, v, path)).ToList());
        }
        return Parsed(cells, path, producedObs, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Consumers load a kept fixture (a copy, so the original stays intact) and are judged against its manifest.</summary>
    private Artifact PrepareGolden(IReadOnlyList<Cell> cells)
    {
        var first = cells[0];
        var golden = _goldens.Single(g => g.ProducerId == first.Producer && g.Case == first.Case && g.Route == first.Route);
        var path = ArtifactPath(first);
        JsonNode expected;
        Stream source;
        try
        {
            expected = golden.ExpectedNode();
            // A folder fixture (Hugging Face's layouts) is copied file by file below.
            source = Directory.Exists(golden.ArtifactPath) ? Stream.Null : File.OpenRead(golden.ArtifactPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidDataException or NullReferenceException)
        {
            // The kept fixture itself is missing or unreadable.
            var subject = e is FileNotFoundException or UnauthorizedAccessException || e.Message.Contains(golden.ArtifactPath, StringComparison.Ordinal) ? golden.ArtifactPath : golden.ObservationPath;
            var v = CellJudge.Failed(new Problem(ProblemCodes.FixtureError, subject, $"{subject}: {e.Message}"));
            return new Artifact(cells.Select(c => Result(c, v, path)).ToList());
        }
        try
        {
            // The copy the consumers read: written durably, so a full disk leaves no partial copy.
            using (source)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                if (Directory.Exists(golden.ArtifactPath)) ArtifactFiles.CopyFolder(golden.ArtifactPath, path);
                else DurableFile.Write(path, s => source.CopyTo(s));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return IoFailed(cells, path, $"orchestrator could not copy the golden fixture {golden.ArtifactPath} to {path}: {ArtifactFiles.IoCause(e)}");
        }
        return Parsed(cells, path, expected, 0);
    }

    /// <summary>Every cell of an artifact the orchestrator could not write: io_error, naming the path and the cause.</summary>
    private static Artifact IoFailed(IReadOnlyList<Cell> cells, string path, string message)
    {
        var v = CellJudge.Failed(new Problem(ProblemCodes.IoError, path, message));
        return new Artifact(cells.Select(c => Result(c, v, path)).ToList());
    }

    /// <summary>The producer's observation, parsed once for every consumer cell of the artifact.</summary>
    private static Artifact Parsed(IReadOnlyList<Cell> cells, string path, JsonNode expectedNode, double produceSeconds)
    {
        try
        {
            return new Artifact(null, path, expectedNode, Observation.FromJson(expectedNode), produceSeconds);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            return new Artifact(cells.Select(c => Result(c, CellJudge.Failed(new Problem(ProblemCodes.ProtocolError, c.Producer,
                $"producer {c.Producer} sent a malformed observation: {e.Message}")), path)).ToList());
        }
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
                ProducerRequests.For(new JsonObject { ["case"] = cell.Case, ["route"] = cell.Route, ["optimizer"] = spec.Optimizer, ["mode"] = cell.Mode, ["path"] = path }, consumer), options.RequestTimeout)
            : pool.Send(consumer, Ops.Consume,
                ProducerRequests.For(new JsonObject { ["case"] = cell.Case, ["route"] = cell.Route, ["mode"] = cell.Mode, ["path"] = path }, consumer), options.RequestTimeout);
        var seconds = produceSeconds + clock.Elapsed.TotalSeconds;
        // CUDA kernels against CPU ones: the tolerance is stated per device pair (Catalogue.ToleranceFor).
        var verdict = CellJudge.Judge(cell, spec with { Tolerance = Catalogue.ToleranceFor(spec, cell) }, expectedNode, expected, reply, path);
        return Result(cell, verdict, path, seconds) with { ArchiveVersion = expectedNode["archive_version"]?.GetValue<string>() };
    }

    /// <summary>artifacts/&lt;case&gt;/&lt;route&gt;/&lt;producer&gt;.&lt;ext&gt;</summary>
    public string ArtifactPath(Cell cell) =>
        Path.Combine(options.ArtifactsDir, cell.Case, cell.Route, cell.Producer + Catalogue.ExtensionOf(cell.Route));
}
