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
        CompareKeys(producer, consumer, problems);

        var theirs = consumer.Tensors.GroupBy(t => t.Key).ToDictionary(g => g.Key, g => g.First());
        foreach (var p in producer.Tensors)
        {
            if (!theirs.TryGetValue(p.Key, out var c)) continue;
            if (!p.Shape.SequenceEqual(c.Shape)) problems.Add($"{p.Key}: shape {p.ShapeText} became {c.ShapeText}");
            else if (p.Dtype != c.Dtype) problems.Add($"{p.Key}: dtype {p.Dtype} became {c.Dtype}");
            else if (!string.Equals(p.Sha256, c.Sha256, StringComparison.OrdinalIgnoreCase))
                problems.Add($"{p.Key}: bytes differ ({p.Dtype} {p.ShapeText}; sha256 {p.Sha256[..12]}… became {c.Sha256[..Math.Min(12, c.Sha256.Length)]}…)");
        }

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
        return new Verdict(problems.Count == 0, problems, diff);
    }

    private static void CompareKeys(Observation producer, Observation consumer, List<string> problems)
    {
        var p = producer.Tensors.Select(t => t.Key).ToList();
        var c = consumer.Tensors.Select(t => t.Key).ToList();
        var missing = p.Except(c).Order(StringComparer.Ordinal).ToList();
        var unexpected = c.Except(p).Order(StringComparer.Ordinal).ToList();
        // PyTorch's own wording for load_state_dict, keys listed and sorted.
        if (missing.Count > 0) problems.Add($"Missing key(s) in state_dict: {string.Join(", ", missing.Select(k => $"\"{k}\""))}");
        if (unexpected.Count > 0) problems.Add($"Unexpected key(s) in state_dict: {string.Join(", ", unexpected.Select(k => $"\"{k}\""))}");
        if (missing.Count == 0 && unexpected.Count == 0)
        {
            for (int i = 0; i < p.Count; i++)
            {
                if (p[i] == c[i]) continue;
                problems.Add($"key order differs at position {i}: producer has \"{p[i]}\", consumer has \"{c[i]}\"");
                break;
            }
        }
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
