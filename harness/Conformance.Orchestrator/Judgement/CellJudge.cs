using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>
/// Every verdict policy of a cell in one place: what a worker's refusal means, the shape-mismatch
/// mode (the load must fail, naming the key and both shapes), strict=False warm starts, checkpoints
/// (optimizer state and resumed training) and the train-mode proof that eval() took effect.
/// <see cref="Conformance.Orchestrator.Runs.MatrixRunner"/> only collects observations.
/// </summary>
public static class CellJudge
{
    /// <summary>A worker's refusal or the orchestrator's view of a dead worker, as one problem.</summary>
    public static Problem FromReply(Reply reply, string? path, string subject) => reply switch
    {
        Reply.Answered { Response.Error: { } e } => new Problem(ErrorCode(e.Kind), subject, StripPath(e.Message, path)),
        Reply.Failed f => new Problem(P.All.Contains(f.Kind) ? f.Kind : P.RuntimeError, subject, f.Message),
        _ => new Problem(P.ProtocolError, subject, "no result"),
    };

    private static string ErrorCode(string kind) => kind switch
    {
        ErrorKinds.LoadError => P.LoadError,
        ErrorKinds.SaveError => P.SaveError,
        ErrorKinds.BadRequest => P.BadRequest,
        _ => P.RuntimeError,
    };

    public static bool IsNotApplicable(Reply reply) => reply is Reply.Answered { Response.Error.Kind: ErrorKinds.NotApplicable };

    /// <summary>Every cell of an artifact its producer could not write: not_applicable where it lacks the capability.</summary>
    public static CellVerdict ProducerFailed(string producerId, Reply reply, string path)
    {
        if (IsNotApplicable(reply)) return NotApplicable(reply, path, $"producer {producerId}");
        var p = FromReply(reply, path, $"producer {producerId}");
        return new CellVerdict(Outcome.Fail, [p], $"producer {producerId} could not save: {p.Line}");
    }

    public static CellVerdict Failed(Problem p) => new(Outcome.Fail, [p], p.Line);

    private static CellVerdict NotApplicable(Reply reply, string? path, string who)
    {
        var e = ((Reply.Answered)reply).Response.Error!;
        return new CellVerdict(Outcome.NotApplicable, [], $"not_applicable: {who}: {StripPath(e.Message, path)}");
    }

    /// <summary>The verdict on one consumer's reply against the producer's observation.</summary>
    public static CellVerdict Judge(Cell cell, CaseSpec spec, JsonNode expectedNode, Observation expected, Reply reply, string path)
    {
        if (IsNotApplicable(reply)) return NotApplicable(reply, path, $"consumer {cell.Consumer}");

        if (cell.Mode == Catalogue.ShapeMismatchMode && spec.Mismatch is { } mismatch)
        {
            // The load is meant to fail: the verdict is on the error's evidence.
            if (reply is Reply.Failed) return Failed(FromReply(reply, path, cell.Consumer));
            var loadError = reply is Reply.Answered { Response.Error: { Kind: ErrorKinds.LoadError } e } ? StripPath(e.Message, path) : null;
            var v = Judgement.Judge.CompareMismatchError(loadError, mismatch);
            return v.Passed ? new CellVerdict(Outcome.Pass, [], $"refused as expected: {loadError}") : new CellVerdict(Outcome.Fail, v.Problems, v.Summary);
        }

        if (cell.Mode == "default" && RealLayouts.KeyPrefix(cell.Route) is { } prefix)
        {
            // A plain load of prefixed keys is meant to fail: the verdict is on the error's evidence.
            if (reply is Reply.Failed) return Failed(FromReply(reply, path, cell.Consumer));
            var loadError = reply is Reply.Answered { Response.Error: { Kind: ErrorKinds.LoadError } e } ? StripPath(e.Message, path) : null;
            var v = Judgement.Judge.ComparePrefixError(loadError, prefix);
            return v.Passed ? new CellVerdict(Outcome.Pass, [], $"refused as expected: {loadError}") : new CellVerdict(Outcome.Fail, v.Problems, v.Summary);
        }

        if (reply.Result is not { } obs)
        {
            var p = FromReply(reply, path, cell.Consumer);
            // A refused TorchScript archive carries its version record as evidence.
            if (expectedNode["archive_version"]?.GetValue<string>() is { } version) p = p with { Message = p.Message + $" [archive version record {version}]" };
            return Failed(p);
        }

        Observation actual;
        CheckpointVerdict? checkpoint = null;
        try
        {
            actual = Observation.FromJson(obs);
            if (spec.IsCheckpoint) checkpoint = CheckpointJudge.Compare(expectedNode, obs);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException or KeyNotFoundException or ArgumentException)
        {
            return Failed(new Problem(P.ProtocolError, cell.Consumer, $"consumer {cell.Consumer} sent a malformed observation: {e.Message}"));
        }

        var verdict = cell.Mode == Catalogue.StrictFalse && spec.Partial is { } partial ? Judgement.Judge.ComparePartial(expected, actual, partial)
            : checkpoint is not null ? Judgement.Judge.CompareResumed(expected, actual, spec.Tolerance)
            : Judgement.Judge.Compare(expected, actual, spec.Tolerance);
        var problems = new List<Problem>(checkpoint?.Problems ?? []);
        problems.AddRange(verdict.Problems);
        var (trainMode, trainEval) = Judgement.Judge.CompareTrainMode(actual, spec.Tolerance);
        if (spec.TrainModeMatters && cell.Mode != Catalogue.StrictFalse && !spec.IsCheckpoint)
        {
            if (trainMode is not null) problems.Add(trainMode);
            // No train-mode outputs is no proof either way: a missing check must not pass.
            else if (trainEval is null)
                problems.Add(new Problem(P.TrainMode, "", "train-mode outputs missing or of another length: whether eval() took effect is unproven"));
        }

        // Fine-tuning after the load (checkpoints judge training by their resumed parameters instead; optimizer_state
        // loads the model with a state-dict reader, whose parameters must stay trainable, and reports it too).
        if (!spec.IsCheckpoint || cell.Route == Catalogue.OptimizerState) problems.AddRange(Judgement.Judge.CompareFineTune(actual));

        var notes = checkpoint is { Notes.Count: > 0 } ? "notes: " + string.Join("; ", checkpoint.Notes) : "";
        return problems.Count == 0
            ? new CellVerdict(Outcome.Pass, [], notes) { Diff = verdict.Diff, TrainEvalDiff = trainEval }
            : new CellVerdict(Outcome.Fail, problems, string.Join("; ", problems.Select(p => p.Line))) { Diff = verdict.Diff, TrainEvalDiff = trainEval };
    }

    /// <summary>A worker names the artifact first; the report records it apart.</summary>
    public static string StripPath(string message, string? path) =>
        path is not null && message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;
}
