using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Judgement;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// gpu-check judges on a machine without .NET, with python/torchconformance/judge.py. These specs
/// keep that judge equal to the orchestrator's (<see cref="CellJudge"/>, <see cref="Judge"/>,
/// <see cref="CheckpointJudge"/>): both judge the same consumer replies against the same committed
/// producer observations, and every outcome, message, problem (code, subject, message, measure) and
/// output difference must agree. The replies are the fixtures' own observations, as-is and with one
/// thing broken each (a flipped hash, a dropped or added or moved key, a shape, a dtype, outputs
/// past the tolerance, a lost tie, a load error, a dropped hyperparameter, ...).
/// </summary>
public sealed class GpuJudgeAgreementSpecs(ITestOutputHelper output)
{
    private static readonly RepoLayout Repo = RepoLayout.Find();
    private const string Consumer = "pytorch-2.11-cuda";

    private sealed record Query(string Case, string Route, string Producer, string Mode, JsonObject Expected, JsonObject Reply, string Path, Tolerance Tolerance, string Variant);

    private static JsonObject Ok(JsonNode result) => new() { ["id"] = 1, ["status"] = "ok", ["result"] = result };

    private static JsonObject Error(string kind, string message) =>
        new() { ["id"] = 1, ["status"] = "error", ["error"] = new JsonObject { ["kind"] = kind, ["message"] = message } };

    private static JsonObject Copy(JsonNode n) => n.DeepClone().AsObject();

    /// <summary>The consumer's view of a producer observation: the same, with train-mode outputs that differ.</summary>
    private static JsonObject AsConsumer(JsonObject expected)
    {
        var c = Copy(expected);
        if (c["outputs"] is JsonObject o)
            c["train_outputs"] = new JsonObject { ["shape"] = o["shape"]!.DeepClone(), ["values"] = new JsonArray(o["values"]!.AsArray().Select(v => (JsonNode)(Num(v) + 0.5)).ToArray()) };
        // Fine-tuning after the load: every parameter trainable and moved by one step.
        if (c["outputs"] is not null)
            c["fine_tune"] = new JsonObject
            {
                ["parameters"] = new JsonArray(c["tensors"]!.AsArray().Select(t => (JsonNode)t!["key"]!.GetValue<string>()).ToArray()),
                ["frozen"] = new JsonArray(),
                ["unchanged"] = new JsonArray(),
                ["zero_grad"] = new JsonArray(),
            };
        return c;
    }

    private static double Num(JsonNode? v) => v is JsonValue x && x.TryGetValue(out double d) ? d
        : v is JsonValue s && s.TryGetValue(out string? str) ? double.Parse(str, CultureInfo.InvariantCulture) : double.NaN;

    private static IEnumerable<(string Variant, JsonObject Reply)> Variants(CaseSpec spec, string route, string mode, JsonObject expected, string path)
    {
        var good = AsConsumer(expected);
        yield return ("as-is", Ok(good));
        yield return ("load_error", Error(ErrorKinds.LoadError, $"{path}: RuntimeError: Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False"));
        yield return ("not_applicable", Error(ErrorKinds.NotApplicable, "torch 1.13.0a0 has no torch.load(mmap=...) (added in 2.1)"));
        yield return ("runtime_error", Error(ErrorKinds.RuntimeError, "RuntimeError: CUDA error: out of memory"));
        yield return ("no result", new JsonObject { ["id"] = 1, ["status"] = "ok" });
        if (mode == "default" && RealLayouts.KeyPrefix(route) is { } prefix)
        {
            yield return ("prefix named", Error(ErrorKinds.LoadError, $"{path}: RuntimeError: every key in the file starts with '{prefix}': strip the `{prefix}` prefix: Error(s) in loading state_dict"));
            yield return ("prefix unnamed", Error(ErrorKinds.LoadError, $"{path}: InvalidOperationException: The loaded state_dict is not identical to the target dictionary."));
            yield break;
        }
        if (mode == Catalogue.ShapeMismatchMode)
        {
            yield return ("mismatch named", Error(ErrorKinds.LoadError, $"{path}: RuntimeError: Error(s) in loading state_dict for LeNetWithHead: size mismatch for fc3.weight: copying a param with shape torch.Size([10, 84]) from checkpoint, the shape in current model is torch.Size([11, 84])."));
            yield return ("mismatch unnamed", Error(ErrorKinds.LoadError, $"{path}: RuntimeError: size mismatch"));
            yield break;
        }
        var tensors = good["tensors"]!.AsArray();
        if (tensors.Count > 0)
        {
            var flipped = Copy(good);
            var sha = flipped["tensors"]![0]!["sha256"]!.GetValue<string>();
            flipped["tensors"]![0]!["sha256"] = (sha[0] == '0' ? "1" : "0") + sha[1..];
            yield return ("flipped hash", Ok(flipped));
            var upper = Copy(good);
            upper["tensors"]![0]!["sha256"] = sha.ToUpperInvariant();
            yield return ("hash in upper case", Ok(upper));
            var dropped = Copy(good);
            dropped["tensors"]!.AsArray().RemoveAt(0);
            yield return ("dropped key", Ok(dropped));
            var extra = Copy(good);
            extra["tensors"]!.AsArray().Add(new JsonObject { ["key"] = "zz.extra", ["shape"] = new JsonArray(2), ["dtype"] = "float32", ["sha256"] = new string('a', 64) });
            extra["tensors"]!.AsArray().Add(tensors[^1]!.DeepClone());
            yield return ("extra and duplicate key", Ok(extra));
            var shape = Copy(good);
            shape["tensors"]![0]!["shape"]!.AsArray().Add(1);
            yield return ("shape", Ok(shape));
            var dtype = Copy(good);
            dtype["tensors"]![tensors.Count - 1]!["dtype"] = "float64";
            yield return ("dtype", Ok(dtype));
        }
        if (tensors.Count > 2)
        {
            var moved = Copy(good);
            var list = moved["tensors"]!.AsArray();
            var first = list[0]!.DeepClone();
            list.RemoveAt(0);
            list.Add(first);
            yield return ("moved key", Ok(moved));
        }
        var outputsKey = good["outputs"] is not null ? "outputs" : "resumed";
        if (good[outputsKey] is JsonObject outs && outs["values"]!.AsArray().Count > 0)
        {
            foreach (var (name, delta) in new[] { ("outputs within", 3e-6), ("outputs past", 3e-3), ("outputs NaN", double.NaN) })
            {
                var v = Copy(good);
                var values = v[outputsKey]!["values"]!.AsArray();
                values[values.Count / 2] = double.IsNaN(delta) ? "NaN" : Num(values[values.Count / 2]) + delta;
                yield return (name, Ok(v));
            }
            var reshaped = Copy(good);
            reshaped[outputsKey]!["shape"]!.AsArray().Add(1);
            yield return ("outputs reshaped", Ok(reshaped));
            var noOutputs = Copy(good);
            noOutputs.Remove(outputsKey);
            yield return ("outputs missing", Ok(noOutputs));
        }
        if (good["train_outputs"] is not null)
        {
            var same = Copy(good);
            same["train_outputs"] = same["outputs"]!.DeepClone();
            yield return ("train equals eval", Ok(same));
            var none = Copy(good);
            none.Remove("train_outputs");
            yield return ("train missing", Ok(none));
        }
        if (good["aliases"] is JsonArray { Count: > 0 })
        {
            var lost = Copy(good);
            lost["aliases"] = new JsonArray();
            yield return ("tie lost", Ok(lost));
            var unverified = Copy(good);
            unverified.Remove("aliases");
            yield return ("tie unverified", Ok(unverified));
        }
        if (good["fine_tune"] is JsonObject ft && ft["parameters"]!.AsArray().Count > 0)
        {
            var first = ft["parameters"]![0]!.GetValue<string>();
            var frozen = Copy(good);
            frozen["fine_tune"]!["frozen"] = ft["parameters"]!.DeepClone();
            yield return ("frozen after load", Ok(frozen));
            var unchanged = Copy(good);
            unchanged["fine_tune"]!["unchanged"] = new JsonArray(first);
            unchanged["fine_tune"]!["zero_grad"] = new JsonArray(first);
            yield return ("unchanged after a step", Ok(unchanged));
            var unobserved = Copy(good);
            unobserved.Remove("fine_tune");
            yield return ("fine-tune unobserved", Ok(unobserved));
        }
        if (good["schedule"] is JsonObject schedule)
        {
            var later = Copy(good);
            var lrs = later["schedule"]!["lrs"]!.AsArray();
            lrs[0] = Num(lrs[0]) * 0.5;
            yield return ("schedule one step off", Ok(later));
            var close = Copy(good);
            close["schedule"]!["last_lr"]![0] = Num(schedule["last_lr"]![0]) * (1 + 1e-12);
            yield return ("schedule within 1e-9", Ok(close));
            var renamed = Copy(good);
            renamed["schedule"]!["type"] = "LambdaLR";
            renamed["schedule"]!.AsObject().Remove("momenta");
            yield return ("scheduler renamed", Ok(renamed));
            var lost = Copy(good);
            lost.Remove("schedule");
            yield return ("schedule missing", Ok(lost));
            var group = Copy(good);
            group["optimizer"]!["param_groups"]![0]!.AsObject().Remove("initial_lr");
            yield return ("initial_lr kept by the scheduler", Ok(group));
        }
        if (mode == Catalogue.StrictFalse)
        {
            var partial = Copy(good);
            partial["missing_keys"] = new JsonArray("fc4.bias", "fc4.weight");
            partial["unexpected_keys"] = new JsonArray("fc3.bias", "fc3.weight");
            yield return ("partial as declared", Ok(partial));
            var wrong = Copy(partial);
            wrong["missing_keys"] = new JsonArray("fc4.weight");
            yield return ("partial misreported", Ok(wrong));
        }
        if (spec.IsCheckpoint)
        {
            foreach (var label in OptimizerLabels(good))
            {
                JsonObject Opt(JsonObject o) => (label.Length == 0 ? o["optimizer"] : o["optimizers"]![label.TrimEnd('.')])!.AsObject();
                var epoch = Copy(good);
                epoch["epoch"] = 4;
                yield return ("epoch", Ok(epoch));
                var loss = Copy(good);
                if (loss["loss"] is not null) { loss["loss"] = Num(loss["loss"]) * 2; yield return ("loss", Ok(loss)); }
                var group = Copy(good);
                var g0 = Opt(group)["param_groups"]![0]!.AsObject();
                var key = g0.Select(kv => kv.Key).First(k => k != "params");
                g0.Remove(key);
                yield return ($"{label}dropped {key}", Ok(group));
                var flag = Copy(good);
                Opt(flag)["param_groups"]![0]!.AsObject().Remove("foreach");
                yield return ($"{label}dropped foreach", Ok(flag));
                var changed = Copy(good);
                var lr = Opt(changed)["param_groups"]![0]!["lr"]!;
                Opt(changed)["param_groups"]![0]!["lr"] = Num(lr) * 10;
                yield return ($"{label}lr", Ok(changed));
                var state = Copy(good);
                var entries = Opt(state)["state"]!.AsArray();
                if (entries.Count > 0)
                {
                    foreach (var e in entries[0]!["entries"]!.AsArray())
                    {
                        if (e!["sha256"] is not null) e["sha256"] = new string('f', 64);
                        else if (e["value"] is JsonValue sv && sv.TryGetValue(out double step))
                        {
                            e["value"] = step + 1;
                            e["representation"] = "int";
                        }
                    }
                    yield return ($"{label}state", Ok(state));
                    var stateDropped = Copy(good);
                    Opt(stateDropped)["state"]!.AsArray().RemoveAt(0);
                    yield return ($"{label}state dropped", Ok(stateDropped));
                }
                var noOpt = Copy(good);
                if (label.Length == 0) noOpt.Remove("optimizer"); else noOpt["optimizers"]!.AsObject().Remove(label.TrimEnd('.'));
                yield return ($"{label}optimizer missing", Ok(noOpt));
            }
        }
    }

    private static IEnumerable<string> OptimizerLabels(JsonObject obs) =>
        obs["optimizers"] is JsonObject named ? named.Select(kv => kv.Key + ".") : obs["optimizer"] is not null ? [""] : [];

    private static List<Query> Corpus()
    {
        var queries = new List<Query>();
        foreach (var g in GoldenFixtures.Find(Repo.FixturesDir))
        {
            var spec = Catalogue.All.FirstOrDefault(c => c.Name == g.Case);
            if (spec is null || !Catalogue.RoutesOf(spec).Contains(g.Route)) continue;
            var expected = g.ExpectedNode().AsObject();
            var producerDevice = Runtime.DeviceOf(g.Producer);
            foreach (var mode in Catalogue.LoadModes(spec, RuntimeKinds.PyTorch, g.Route))
            {
                // Mode-specific variants where the mode changes the judgement; one plain mode otherwise.
                if (mode is "weights_only" or "mmap" or "map_location_cpu") continue;
                var tol = Catalogue.ToleranceFor(spec, producerDevice, Runtime.DeviceOf(Consumer));
                foreach (var (variant, reply) in Variants(spec, g.Route, mode, expected, g.ArtifactPath))
                    queries.Add(new Query(g.Case, g.Route, g.ProducerId, mode, expected, reply, g.ArtifactPath, tol, variant));
            }
        }
        return queries;
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task The_python_judge_and_the_orchestrators_judge_agree_on_every_observation_of_every_committed_fixture()
    {
        await Task.Yield();
        var python = PythonCodecSpecs.HostPython();
        var corpus = Corpus();
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-judge");
        Directory.CreateDirectory(dir);
        var input = Path.Combine(dir, "queries.jsonl");
        await File.WriteAllLinesAsync(input, corpus.Select(q => new JsonObject
        {
            ["case"] = q.Case, ["route"] = q.Route, ["consumer"] = Consumer, ["mode"] = q.Mode, ["expected"] = q.Expected.DeepClone(), ["reply"] = q.Reply.DeepClone(),
            ["path"] = q.Path, ["tolerance"] = new JsonObject { ["atol"] = q.Tolerance.Atol, ["rtol"] = q.Tolerance.Rtol },
        }.ToJsonString()));
        var (code, stdout, stderr) = Discovery.Run([python, "-m", "torchconformance", "judge", input], TimeSpan.FromSeconds(240), ("PYTHONPATH", Repo.PythonPackageDir));
        Assert.True(code == 0, $"python -m torchconformance judge {input} exited {code}: {stderr}");
        var answers = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(corpus.Count, answers.Count);

        var disagreements = new List<string>();
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var codes = new SortedSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < corpus.Count; i++)
        {
            var q = corpus[i];
            var response = JsonSerializer.Deserialize<Response>(q.Reply.ToJsonString())!;
            var cell = new Cell(q.Case, q.Route, q.Producer, Consumer, q.Mode);
            var spec = Catalogue.Case(q.Case) with { Tolerance = q.Tolerance };
            var cs = CellJudge.Judge(cell, spec, q.Expected, Observation.FromJson(q.Expected), new WorkerReply.Answered(response), q.Path);
            var py = answers[i];
            var label = $"{cell.Name} [{q.Variant}]";
            outcomes[cs.Outcome.Wire()] = outcomes.GetValueOrDefault(cs.Outcome.Wire()) + 1;
            foreach (var p in cs.Problems) codes.Add(p.Code);
            if (cs.Outcome.Wire() != py["outcome"]!.GetValue<string>()) disagreements.Add($"{label}: outcome {cs.Outcome.Wire()} (C#) vs {py["outcome"]} (python)");
            if (cs.Message != py["message"]!.GetValue<string>()) disagreements.Add($"{label}: message\n  C#:     {cs.Message}\n  python: {py["message"]}");
            var pyProblems = py["problems"]!.AsArray();
            if (cs.Problems.Count != pyProblems.Count) { disagreements.Add($"{label}: {cs.Problems.Count} problems (C#) vs {pyProblems.Count} (python)"); continue; }
            for (int k = 0; k < cs.Problems.Count; k++)
            {
                var (a, b) = (cs.Problems[k], pyProblems[k]!);
                if (a.Code != b["code"]!.GetValue<string>() || a.Subject != b["subject"]!.GetValue<string>() || a.Message != b["message"]!.GetValue<string>())
                    disagreements.Add($"{label}: problem {k}\n  C#:     {a.Code} [{a.Subject}] {a.Message}\n  python: {b["code"]} [{b["subject"]}] {b["message"]}");
                var pm = b["measure"] is null ? (double?)null : Num(b["measure"]);
                if (a.Measure != pm) disagreements.Add($"{label}: problem {k} measure {a.Measure} (C#) vs {pm} (python)");
            }
            var pyDiff = py["max_abs_diff"] is null ? (double?)null : Num(py["max_abs_diff"]);
            if (cs.Diff?.MaxAbs != pyDiff) disagreements.Add($"{label}: max abs diff {cs.Diff?.MaxAbs} (C#) vs {pyDiff} (python)");
        }
        output.WriteLine($"{corpus.Count} judgements; outcomes {string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value}"))}; problem codes {string.Join(", ", codes)}");
        Assert.True(disagreements.Count == 0, $"{disagreements.Count} of {corpus.Count} judgements differ:\n{string.Join("\n", disagreements.Take(40))}");
        // The corpus exercises the judge, not just its happy path.
        Assert.True(outcomes.GetValueOrDefault("pass") > 100 && outcomes.GetValueOrDefault("fail") > 1000 && outcomes.GetValueOrDefault("not_applicable") > 100, string.Join(", ", outcomes));
        foreach (var c in new[] { "bytes", "missing_keys", "unexpected_keys", "duplicate_key", "key_order", "shape", "dtype", "outputs", "resume", "train_mode",
                     "tie_lost", "partial_load", "shape_mismatch", "epoch", "loss", "param_groups", "optimizer_state", "load_error", "runtime_error", "protocol_error" })
            Assert.Contains(c, codes);
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task A_python_judge_that_differs_from_the_orchestrators_is_caught()
    {
        // The agreement spec must be able to fail: the same comparison on a judge whose tolerance is off by one ulp-sized step.
        await Task.Yield();
        var python = PythonCodecSpecs.HostPython();
        var g = GoldenFixtures.Find(Repo.FixturesDir).First(f => f.Case == "lenet" && f.Route == Catalogue.Pickle);
        var expected = g.ExpectedNode().AsObject();
        var reply = AsConsumer(expected);
        var values = reply["outputs"]!["values"]!.AsArray();
        var tol = Catalogue.Case("lenet").Tolerance;
        values[0] = Num(values[0]) + tol.Atol + tol.Rtol * Math.Abs(Num(values[0])) * 1.01;  // just outside
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "gpu-judge");
        Directory.CreateDirectory(dir);
        var input = Path.Combine(dir, "one.jsonl");
        JsonObject Q(double atol) => new()
        {
            ["case"] = "lenet", ["consumer"] = Consumer, ["mode"] = "default", ["expected"] = expected.DeepClone(), ["reply"] = Ok(reply.DeepClone()),
            ["path"] = g.ArtifactPath, ["tolerance"] = new JsonObject { ["atol"] = atol, ["rtol"] = tol.Rtol },
        };
        await File.WriteAllLinesAsync(input, [Q(tol.Atol).ToJsonString(), Q(tol.Atol * 2).ToJsonString()]);
        var (code, stdout, stderr) = Discovery.Run([python, "-m", "torchconformance", "judge", input], TimeSpan.FromSeconds(60), ("PYTHONPATH", Repo.PythonPackageDir));
        Assert.True(code == 0, stderr);
        var answers = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["outcome"]!.GetValue<string>()).ToList();
        var cs = CellJudge.Judge(new Cell("lenet", "pickle", g.ProducerId, Consumer, "default"), Catalogue.Case("lenet"), expected, Observation.FromJson(expected),
            new WorkerReply.Answered(JsonSerializer.Deserialize<Response>(Ok(reply).ToJsonString())!), g.ArtifactPath);
        Assert.Equal("fail", cs.Outcome.Wire());
        Assert.Equal(["fail", "pass"], answers);
        Assert.NotEqual(cs.Outcome.Wire(), answers[1]);  // a looser python judge would be told apart
    }
}
