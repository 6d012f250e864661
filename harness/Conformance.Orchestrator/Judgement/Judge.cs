using Conformance.Orchestrator.Matrix;

namespace Conformance.Orchestrator.Judgement;

/// <summary>The measured distance between two eval outputs.</summary>
public sealed record OutputDiff(double MaxAbs, double MaxRel, int WorstIndex, bool WithinTolerance);

/// <summary>A judgement of one consumer observation against its producer's.</summary>
public sealed record Verdict(bool Passed, IReadOnlyList<string> Problems, OutputDiff? Diff)
{
    /// <summary>The first problems, one line, for tables; the report keeps them all.</summary>
    public string Summary => Passed ? "" : string.Join("; ", Problems.Take(3)) + (Problems.Count > 3 ? $"; and {Problems.Count - 3} more" : "");
}

/// <summary>
/// The one place where a crossing is judged. The consumer must report the producer's keys in the
/// producer's order, with equal shapes and dtypes and bit-identical bytes (by SHA-256 of each
/// tensor's raw little-endian bytes); its eval outputs must lie within the case's tolerance.
/// </summary>
public static class Judge
{
    public static Verdict Compare(Observation producer, Observation consumer, Tolerance tolerance)
    {
        var problems = new List<string>();
        CompareKeySets(producer, consumer, problems);

        var theirs = consumer.Tensors.GroupBy(t => t.Key).ToDictionary(g => g.Key, g => g.First());
        foreach (var p in producer.Tensors)
        {
            if (!theirs.TryGetValue(p.Key, out var c)) continue;
            if (!p.Shape.SequenceEqual(c.Shape)) problems.Add($"{p.Key}: shape {p.ShapeText} became {c.ShapeText}");
            else if (p.Dtype != c.Dtype) problems.Add($"{p.Key}: dtype {p.Dtype} became {c.Dtype}");
            else if (!string.Equals(p.Sha256, c.Sha256, StringComparison.OrdinalIgnoreCase))
                problems.Add($"{p.Key}: bytes differ ({p.Dtype} {p.ShapeText}; sha256 {Short(p.Sha256)}… became {Short(c.Sha256)}…)");
        }

        // Tied weights must stay tied: what the producer shared, the consumer's model shares too.
        foreach (var (a, b) in producer.Aliases ?? [])
            if (consumer.Aliases is { } theirAliases && !theirAliases.Contains((a, b)))
                problems.Add($"tie lost: \"{a}\" and \"{b}\" share one tensor in the producer but not after loading");

        OutputDiff? diff = null;
        if (producer.Outputs is null || consumer.Outputs is null)
            problems.Add($"outputs missing on the {(producer.Outputs is null ? "producer" : "consumer")} side");
        else if (!producer.Outputs.Shape.SequenceEqual(consumer.Outputs.Shape))
            problems.Add($"outputs: shape [{string.Join(", ", producer.Outputs.Shape)}] became [{string.Join(", ", consumer.Outputs.Shape)}]");
        else
        {
            diff = CompareOutputs(producer.Outputs.Values, consumer.Outputs.Values, tolerance);
            if (!diff.WithinTolerance)
                problems.Add($"outputs: max abs diff {diff.MaxAbs:g4} (max rel {diff.MaxRel:g4}) at index {diff.WorstIndex} exceeds {tolerance}");
        }
        // Order last: a reordering alone is a lesser finding than any changed value or output, and a
        // known failure declared for the order must not hide those.
        CompareKeyOrder(producer, consumer, problems);
        return new Verdict(problems.Count == 0, problems, diff);
    }

    private static void CompareKeySets(Observation producer, Observation consumer, List<string> problems)
    {
        var p = producer.Tensors.Select(t => t.Key).ToList();
        var c = consumer.Tensors.Select(t => t.Key).ToList();
        var missing = p.Except(c).Order(StringComparer.Ordinal).ToList();
        var unexpected = c.Except(p).Order(StringComparer.Ordinal).ToList();
        // PyTorch's own wording for load_state_dict, keys listed and sorted.
        if (missing.Count > 0) problems.Add($"Missing key(s) in state_dict: {Quoted(missing)}");
        if (unexpected.Count > 0) problems.Add($"Unexpected key(s) in state_dict: {Quoted(unexpected)}");
    }

    private static void CompareKeyOrder(Observation producer, Observation consumer, List<string> problems)
    {
        var p = producer.Tensors.Select(t => t.Key).ToList();
        var c = consumer.Tensors.Select(t => t.Key).ToList();
        if (p.Count != c.Count || !p.Order().SequenceEqual(c.Order())) return; // the key sets differ: said above
        for (int i = 0; i < p.Count; i++)
        {
            if (p[i] == c[i]) continue;
            problems.Add($"key order differs at position {i}: producer has \"{p[i]}\", consumer has \"{c[i]}\"");
            return;
        }
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

    public static string Quoted(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"\"{k}\""));

    /// <summary>
    /// A strict=False warm start: the consumer must report exactly the case's missing and
    /// unexpected keys, and every key it shares with the producer must carry the producer's bytes.
    /// </summary>
    public static Verdict ComparePartial(Observation producer, Observation consumer, Matrix.PartialLoad expected)
    {
        var problems = new List<string>();
        if (!(consumer.MissingKeys ?? []).SequenceEqual(expected.Missing))
            problems.Add($"missing_keys reported [{Quoted(consumer.MissingKeys ?? [])}], expected [{Quoted(expected.Missing)}]");
        if (!(consumer.UnexpectedKeys ?? []).SequenceEqual(expected.Unexpected))
            problems.Add($"unexpected_keys reported [{Quoted(consumer.UnexpectedKeys ?? [])}], expected [{Quoted(expected.Unexpected)}]");
        var theirs = consumer.Tensors.ToDictionary(t => t.Key);
        int shared = 0;
        foreach (var p in producer.Tensors.Where(t => theirs.ContainsKey(t.Key)))
        {
            shared++;
            if (!string.Equals(p.Sha256, theirs[p.Key].Sha256, StringComparison.OrdinalIgnoreCase))
                problems.Add($"{p.Key}: shared key not loaded (sha256 {Short(p.Sha256)}… became {Short(theirs[p.Key].Sha256)}…)");
        }
        if (shared == 0) problems.Add("no key is shared between the file and the warm-start model");
        return new Verdict(problems.Count == 0, problems, null);
    }

    /// <summary>A load into a model of the wrong shape must fail, naming the key and both shapes.</summary>
    public static Verdict CompareMismatchError(string? error, Matrix.ShapeMismatch expected)
    {
        string Dims(IReadOnlyList<long> s) => string.Join(", ", s);
        if (error is null)
            return new Verdict(false, [$"loaded {expected.Key} of shape [{Dims(expected.FileShape)}] into [{Dims(expected.ModelShape)}] without an error"], null);
        var absent = new[] { expected.Key, Dims(expected.FileShape), Dims(expected.ModelShape) }.Where(s => !error.Contains(s, StringComparison.Ordinal)).ToList();
        return absent.Count == 0
            ? new Verdict(true, [], null)
            : new Verdict(false, [$"the error does not name {string.Join(" or ", absent.Select(a => $"\"{a}\""))}: {error}"], null);
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
