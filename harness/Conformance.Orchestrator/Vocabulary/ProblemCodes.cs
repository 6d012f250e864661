namespace Conformance.Orchestrator.Vocabulary;

/// <summary>The problem codes: one vocabulary for the judge, the ledger and the reports.</summary>
public static class ProblemCodes
{
    public const string MissingKeys = "missing_keys";
    public const string UnexpectedKeys = "unexpected_keys";
    public const string DuplicateKey = "duplicate_key";
    public const string KeyOrder = "key_order";
    public const string Shape = "shape";
    public const string Dtype = "dtype";
    public const string Bytes = "bytes";
    public const string TieLost = "tie_lost";
    public const string Outputs = "outputs";
    public const string TrainMode = "train_mode";
    /// <summary>A strict=False warm start reported other missing/unexpected keys, or dropped a shared key's values.</summary>
    public const string PartialLoad = "partial_load";
    /// <summary>A load into a model of the wrong shape succeeded, or its error did not name the key and both shapes.</summary>
    public const string ShapeMismatch = "shape_mismatch";
    /// <summary>A plain load of a file whose keys carry a wrapper's prefix (module., _orig_mod.) succeeded, or its error did not name the prefix and the remedy.</summary>
    public const string PrefixedKeys = "prefixed_keys";
    public const string Epoch = "epoch";
    public const string Loss = "loss";
    public const string ParamGroups = "param_groups";
    public const string OptimizerState = "optimizer_state";
    /// <summary>Training resumed on the consumer diverged from the producer's own continuation.</summary>
    public const string Resume = "resume";
    /// <summary>After the load, parameters were frozen (requires_grad false) or one SGD step left them unchanged: fine-tuning would silently do nothing.</summary>
    public const string FrozenAfterLoad = "frozen_after_load";
    /// <summary>An LR scheduler restored from a checkpoint hands the optimizer other learning rates (or momenta) than the producer's continuation.</summary>
    public const string Scheduler = "scheduler";

    // Errors: the consumer or producer did not get as far as an observation.
    public const string LoadError = "load_error";
    public const string SaveError = "save_error";
    public const string RuntimeError = "runtime_error";
    public const string BadRequest = "bad_request";
    public const string WorkerCrash = "worker_crash";
    public const string Timeout = "worker_timeout";
    public const string StartError = "worker_start_error";
    public const string ProtocolError = "protocol_error";
    public const string FixtureError = "fixture_error";
    /// <summary>The orchestrator could not write or prepare a file of the cell (a full disk, an unwritable artifacts folder); the message names the path and the cause.</summary>
    public const string IoError = "io_error";

    private static readonly HashSet<string> Errors =
        [LoadError, SaveError, RuntimeError, BadRequest, WorkerCrash, Timeout, StartError, ProtocolError, FixtureError, IoError];

    public static bool IsError(string code) => Errors.Contains(code);

    /// <summary>Every code, for validating the ledger: an entry naming an unknown code is refused when read.</summary>
    public static IReadOnlySet<string> All { get; } = typeof(ProblemCodes).GetFields()
        .Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!).ToHashSet();
}
