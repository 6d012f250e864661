using Conformance.Orchestrator.Vocabulary;
using P = Conformance.Orchestrator.Vocabulary.ProblemCodes;

namespace Conformance.Orchestrator.Judgement;

/// <summary>
/// The one place where a crossing is judged. The consumer must report the producer's keys in the
/// producer's order, with equal shapes and dtypes and bit-identical bytes (by SHA-256 of each
/// tensor's raw little-endian bytes); its eval outputs must lie within the case's tolerance. No
/// verdict comes from exact float equality: floats are judged against a tolerance, bytes by hash.
/// </summary>
public static class Judge
{
    public static ObservationVerdict Compare(Observation producer, Observation consumer, Tolerance tolerance) =>
        Compare(producer, consumer, tolerance, P.Outputs, "outputs");

    /// <summary>A training checkpoint's model tensors, and its resumed parameters (K more steps on each side) against the producer's continuation.</summary>
    public static ObservationVerdict CompareResumed(Observation producer, Observation consumer, Tolerance tolerance) =>
        Compare(producer, consumer, tolerance, P.Resume, "resumed parameters");

    /// <summary><paramref name="outputsCode"/> and <paramref name="outputsLabel"/> say which outputs these are: eval outputs, or resumed parameters.</summary>
    private static ObservationVerdict Compare(Observation producer, Observation consumer, Tolerance tolerance, string outputsCode, string outputsLabel)
    {
        var problems = new List<Problem>();
        CompareKeySets(producer, consumer, problems);
        CompareTensors(producer.Tensors, consumer.Tensors, problems);

        // Tied weights must stay tied: what the producer shared, the consumer's model shares too. A
        // consumer that reports no aliases at all cannot show that it kept them.
        foreach (var (a, b) in producer.Aliases ?? [])
        {
            if (consumer.Aliases is null)
                problems.Add(new Problem(P.TieLost, $"{a}={b}", $"tie unverified: the consumer reported no aliases, so \"{a}\" and \"{b}\" may no longer share one tensor"));
            else if (!consumer.Aliases.Contains((a, b)))
                problems.Add(new Problem(P.TieLost, $"{a}={b}", $"tie lost: \"{a}\" and \"{b}\" share one tensor in the producer but not after loading"));
        }

        var diff = CompareOutputs(producer.Outputs, consumer.Outputs, tolerance, outputsCode, outputsLabel, problems);
        CompareKeyOrder(producer, consumer, problems);
        return new ObservationVerdict(problems, diff);
    }

    /// <summary>
    /// The tensors alone, as `conformance check` judges a reader against PyTorch's reading of a user's file:
    /// the same keys (PyTorch's wording), each with the same shape, dtype and bytes. Key order is judged
    /// where two runtimes wrote the file (the matrix); a user's file has one writer, and readers of a
    /// format list its keys in their own order.
    /// </summary>
    public static IReadOnlyList<Problem> CompareTensors(IReadOnlyList<ObservedTensor> expected, IReadOnlyList<ObservedTensor> got)
    {
        var problems = new List<Problem>();
        CompareKeySets(new Observation(expected, null), new Observation(got, null), problems);
        CompareTensors(expected, got, problems);
        return problems;
    }

    private static void CompareTensors(IReadOnlyList<ObservedTensor> producer, IReadOnlyList<ObservedTensor> consumer, List<Problem> problems)
    {
        var theirs = new Dictionary<string, ObservedTensor>();
        foreach (var t in consumer)
            if (!theirs.TryAdd(t.Key, t))
                problems.Add(new Problem(P.DuplicateKey, t.Key, $"{t.Key}: listed twice by the consumer"));
        foreach (var p in producer)
        {
            if (!theirs.TryGetValue(p.Key, out var c)) continue;
            if (!p.Shape.SequenceEqual(c.Shape)) problems.Add(new Problem(P.Shape, p.Key, $"{p.Key}: shape {p.ShapeText} became {c.ShapeText}"));
            else if (p.Dtype != c.Dtype) problems.Add(new Problem(P.Dtype, p.Key, $"{p.Key}: dtype {p.Dtype} became {c.Dtype}"));
            else if (!string.Equals(p.Sha256, c.Sha256, StringComparison.OrdinalIgnoreCase))
                problems.Add(new Problem(P.Bytes, p.Key, $"{p.Key}: bytes differ ({p.Dtype} {p.ShapeText}; sha256 {Short(p.Sha256)}… became {Short(c.Sha256)}…)"));
        }
    }

    /// <summary>Outputs against the tolerance; the problem's code and label say which outputs (eval outputs, resumed parameters).</summary>
    private static OutputDiff? CompareOutputs(Outputs? producer, Outputs? consumer, Tolerance tolerance, string code, string label, List<Problem> problems)
    {
        if (producer is null || consumer is null)
        {
            problems.Add(new Problem(code, label, $"{label} missing on the {(producer is null ? "producer" : "consumer")} side"));
            return null;
        }
        if (!producer.Shape.SequenceEqual(consumer.Shape))
        {
            problems.Add(new Problem(code, label, $"{label}: shape [{string.Join(", ", producer.Shape)}] became [{string.Join(", ", consumer.Shape)}]"));
            return null;
        }
        var diff = CompareOutputs(producer.Values, consumer.Values, tolerance);
        if (!diff.WithinTolerance)
            problems.Add(new Problem(code, label, $"{label}: max abs diff {diff.MaxAbs:g4} (max rel {diff.MaxRel:g4}) at index {diff.WorstIndex} exceeds {tolerance}") { Measure = diff.MaxAbs });
        return diff;
    }

    private static void CompareKeySets(Observation producer, Observation consumer, List<Problem> problems)
    {
        var p = producer.Tensors.Select(t => t.Key).ToList();
        var c = consumer.Tensors.Select(t => t.Key).ToList();
        var missing = p.Except(c).Order(StringComparer.Ordinal).ToList();
        var unexpected = c.Except(p).Order(StringComparer.Ordinal).ToList();
        // PyTorch's own wording for load_state_dict, keys listed and sorted; the subject is the exact list.
        if (missing.Count > 0) problems.Add(new Problem(P.MissingKeys, string.Join(",", missing), $"Missing key(s) in state_dict: {Quoted(missing)}"));
        if (unexpected.Count > 0) problems.Add(new Problem(P.UnexpectedKeys, string.Join(",", unexpected), $"Unexpected key(s) in state_dict: {Quoted(unexpected)}"));
    }

    /// <summary>
    /// Judged from each side's ordered key list. The subject names the keys that moved (those outside
    /// a longest common subsequence of the two orders), so a ledger entry pins exactly which keys move.
    /// </summary>
    private static void CompareKeyOrder(Observation producer, Observation consumer, List<Problem> problems)
    {
        var shared = producer.Tensors.Select(t => t.Key).Intersect(consumer.Tensors.Select(t => t.Key)).ToHashSet();
        var p = producer.Tensors.Select(t => t.Key).Where(shared.Contains).Distinct().ToList();
        var c = consumer.Tensors.Select(t => t.Key).Where(shared.Contains).Distinct().ToList();
        for (int i = 0; i < p.Count; i++)
        {
            if (p[i] == c[i]) continue;
            problems.Add(new Problem(P.KeyOrder, "moved: " + string.Join(",", Moved(p, c)),
                $"key order differs at position {i}: producer has \"{p[i]}\", consumer has \"{c[i]}\""));
            return;
        }
    }

    /// <summary>The producer's keys outside a longest common subsequence of both orders (ties keep the earlier key in place).</summary>
    internal static IReadOnlyList<string> Moved(IReadOnlyList<string> p, IReadOnlyList<string> c)
    {
        var lcs = new int[p.Count + 1, c.Count + 1];
        for (int i = p.Count - 1; i >= 0; i--)
        for (int j = c.Count - 1; j >= 0; j--)
            lcs[i, j] = p[i] == c[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var kept = new HashSet<string>();
        for (int i = 0, j = 0; i < p.Count && j < c.Count;)
        {
            if (p[i] == c[j]) { kept.Add(p[i]); i++; j++; }
            else if (lcs[i, j + 1] >= lcs[i + 1, j]) j++;
            else i++;
        }
        return p.Where(k => !kept.Contains(k)).ToList();
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

    public static string Quoted(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"\"{k}\""));

    /// <summary>
    /// A strict=False warm start: the consumer must report exactly the case's missing and
    /// unexpected keys, and every key it shares with the producer must carry the producer's bytes.
    /// </summary>
    public static ObservationVerdict ComparePartial(Observation producer, Observation consumer, PartialLoad expected)
    {
        var problems = new List<Problem>();
        if (!(consumer.MissingKeys ?? []).SequenceEqual(expected.Missing))
            problems.Add(new Problem(P.PartialLoad, "missing_keys", $"missing_keys reported [{Quoted(consumer.MissingKeys ?? [])}], expected [{Quoted(expected.Missing)}]"));
        if (!(consumer.UnexpectedKeys ?? []).SequenceEqual(expected.Unexpected))
            problems.Add(new Problem(P.PartialLoad, "unexpected_keys", $"unexpected_keys reported [{Quoted(consumer.UnexpectedKeys ?? [])}], expected [{Quoted(expected.Unexpected)}]"));
        var theirs = new Dictionary<string, ObservedTensor>();
        foreach (var t in consumer.Tensors)
            if (!theirs.TryAdd(t.Key, t))
                problems.Add(new Problem(P.DuplicateKey, t.Key, $"{t.Key}: listed twice by the consumer"));
        int shared = 0;
        foreach (var p in producer.Tensors.Where(t => theirs.ContainsKey(t.Key)))
        {
            shared++;
            if (!string.Equals(p.Sha256, theirs[p.Key].Sha256, StringComparison.OrdinalIgnoreCase))
                problems.Add(new Problem(P.Bytes, p.Key, $"{p.Key}: shared key not loaded (sha256 {Short(p.Sha256)}… became {Short(theirs[p.Key].Sha256)}…)"));
        }
        if (shared == 0) problems.Add(new Problem(P.PartialLoad, "", "no key is shared between the file and the warm-start model"));
        return new ObservationVerdict(problems, null);
    }

    /// <summary>A load into a model of the wrong shape must fail, naming the key and both shapes.</summary>
    public static ObservationVerdict CompareMismatchError(string? error, ShapeMismatch expected)
    {
        string Dims(IReadOnlyList<long> s) => string.Join(", ", s);
        if (error is null)
            return new ObservationVerdict([new Problem(P.ShapeMismatch, expected.Key, $"loaded {expected.Key} of shape [{Dims(expected.FileShape)}] into [{Dims(expected.ModelShape)}] without an error")], null);
        var absent = new[] { expected.Key, Dims(expected.FileShape), Dims(expected.ModelShape) }.Where(s => !error.Contains(s, StringComparison.Ordinal)).ToList();
        return absent.Count == 0
            ? new ObservationVerdict([], null)
            : new ObservationVerdict([new Problem(P.ShapeMismatch, expected.Key, $"the error does not name {string.Join(" or ", absent.Select(a => $"\"{a}\""))}: {error}")], null);
    }

    /// <summary>
    /// A plain load of a file whose every key carries a wrapper's prefix (module. from DataParallel/DDP,
    /// _orig_mod. from torch.compile) must fail, and its error must name the prefix and the remedy
    /// ("strip the `module.` prefix"): a load that succeeds has loaded nothing the model uses.
    /// </summary>
    public static ObservationVerdict ComparePrefixError(string? error, string prefix)
    {
        var remedy = $"strip the `{prefix}` prefix";
        if (error is null)
            return new ObservationVerdict([new Problem(P.PrefixedKeys, prefix, $"loaded a file whose every key starts with '{prefix}' without an error")], null);
        return error.Contains(remedy, StringComparison.Ordinal)
            ? new ObservationVerdict([], null)
            : new ObservationVerdict([new Problem(P.PrefixedKeys, prefix, $"the error does not name the prefix and the remedy (\"{remedy}\"): {error}")], null);
    }

    /// <summary>
    /// Proof that eval() took effect on a model with dropout or batch statistics: its train-mode
    /// outputs must differ from its eval-mode outputs by more than the case's tolerance. A smaller
    /// difference is indistinguishable from the kernel noise of one libtorch run to the next.
    /// </summary>
    public static (Problem? Problem, double? MaxAbs) CompareTrainMode(Observation consumer, Tolerance tolerance)
    {
        if (consumer.TrainOutputs is not { } t || consumer.Outputs is not { } o || t.Values.Count != o.Values.Count) return (null, null);
        var diff = CompareOutputs(o.Values, t.Values, tolerance);
        return diff.WithinTolerance
            ? (new Problem(P.TrainMode, "", $"train-mode outputs equal eval-mode outputs within {tolerance}: the mode switch took no effect"), diff.MaxAbs)
            : (null, diff.MaxAbs);
    }

    /// <summary>
    /// Fine-tuning after a load: every parameter must still require a gradient, and one plain SGD
    /// step on the case's loss must move each of them. A consumer that did not report it has not
    /// shown it: a missing check must not pass.
    /// </summary>
    public static IReadOnlyList<Problem> CompareFineTune(Observation consumer)
    {
        if (consumer.FineTune is not { } f)
            return [new Problem(P.FrozenAfterLoad, "", "fine-tuning after the load unobserved: the consumer reported no fine_tune")];
        var problems = new List<Problem>();
        if (f.Frozen.Count > 0)
            problems.Add(new Problem(P.FrozenAfterLoad, string.Join(",", f.Frozen),
                $"frozen after load: requires_grad is false on {f.Frozen.Count} of {f.Parameters.Count} parameter(s): {Quoted(f.Frozen)}"));
        if (f.Unchanged.Count > 0)
            problems.Add(new Problem(P.FrozenAfterLoad, string.Join(",", f.Unchanged),
                $"not trained after load: one SGD step left {f.Unchanged.Count} of {f.Parameters.Count} parameter(s) unchanged: {Quoted(f.Unchanged)}"));
        return problems;
    }

    /// <summary>numpy.allclose semantics with the producer as reference; NaN equals NaN.</summary>
    public static OutputDiff CompareOutputs(IReadOnlyList<double> expected, IReadOnlyList<double> actual, Tolerance tol)
    {
        double maxAbs = 0, maxRel = 0;
        int worst = -1;
        bool ok = expected.Count == actual.Count;
        for (int i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            if (e.Equals(a)) continue;
            double abs = Math.Abs(a - e);
            if (double.IsNaN(abs)) abs = double.PositiveInfinity;
            double rel = abs / Math.Max(Math.Abs(e), double.Epsilon);
            if (abs > maxAbs || worst < 0) { maxAbs = Math.Max(abs, maxAbs); worst = i; }
            maxRel = Math.Max(maxRel, rel);
            if (!(abs <= tol.Atol + tol.Rtol * Math.Abs(e))) ok = false;
        }
        return new OutputDiff(maxAbs, maxRel, Math.Max(worst, 0), ok);
    }
}
