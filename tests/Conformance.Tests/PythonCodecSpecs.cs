using System.Text.Json.Nodes;
using Conformance.Orchestrator;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Tests;

/// <summary>
/// The PyTorch side's reader of TorchSharp's native format (python/torchconformance/formats/tsnative.py),
/// run with the host's real torch: a fuzz of 3,000 mutations of real TorchSharp files, the attack corpus in
/// python/tests/attacks/tsnative, and the bad cases found by mutation testing, each pinned by its message.
/// </summary>
[Trait("Category", "runtime")]
public sealed class PythonCodecSpecs
{
    private static readonly RepoLayout Repo = RepoLayout.Find();
    private static string AttackDir => Path.Combine(Repo.PythonPackageDir, "tests", "attacks", "tsnative");
    private static string SampleDir => Path.Combine(Repo.PythonPackageDir, "tests", "samples", "torchsharp-0.107");

    /// <summary>The host's interpreter that has torch, as environments.json declares it; skips (or fails under CONFORMANCE_REQUIRE_ALL=1) without one.</summary>
    internal static string HostPython()
    {
        if (FoundPython.Value is { } py) return py;
        var why = "no host python in environments.json can import torch";
        if (Suite.RequireAll) Assert.Fail($"CONFORMANCE_REQUIRE_ALL=1 and {why}");
        Skip.If(true, why);
        return "";
    }

    // Asked once per test run: importing torch takes seconds.
    private static readonly Lazy<string?> FoundPython = new(() =>
        RuntimeEnvironment.Load(Repo.EnvironmentsFile).Where(e => e.Kind == "host")
            .SelectMany(e => e.Runtimes).Where(r => r.Kind == RuntimeKinds.PyTorch && r.Python is not null).Select(r => r.Python!)
            .FirstOrDefault(py => Discovery.Run([py, "-c", "import torch"], TimeSpan.FromSeconds(60)).Code == 0));

    /// <summary>Runs <c>python -m tests.fuzz_tsnative ARGS</c> (python/tests/fuzz_tsnative.py) with the repository's package.</summary>
    internal static (int Code, string Stdout, string Stderr) Fuzz(TimeSpan timeout, params string[] args) =>
        Discovery.Run([HostPython(), "-m", "tests.fuzz_tsnative", .. args], timeout, ("PYTHONPATH", Repo.PythonPackageDir));

    private static string Scratch(string name)
    {
        var dir = Path.Combine(Repo.ArtifactsDir, "tests", "python-codec");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    // One reader process for every file here: the outcome and message of each, by file name.
    private static readonly Lazy<Dictionary<string, JsonNode>> Checked = new(() =>
    {
        var files = Directory.GetFiles(AttackDir, "*.bin").Concat(Directory.GetFiles(SampleDir)).Where(f => !f.EndsWith(".md") && !f.EndsWith(".fsx")).ToArray();
        var json = Scratch("checked.json");
        File.Delete(json);
        var (code, _, err) = Fuzz(TimeSpan.FromSeconds(180), ["--check", .. files, "--json", json]);
        Assert.True(File.Exists(json), $"fuzz_tsnative --check exited {code} without writing {json}: {err}");
        return JsonNode.Parse(File.ReadAllText(json))!.AsArray().ToDictionary(n => n!["path"]!.GetValue<string>(), n => n!);
    });

    private static JsonNode Check(string path)
    {
        HostPython();
        Assert.True(Checked.Value.TryGetValue(path, out var r), $"{path} was not checked");
        return r!;
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task A_fuzz_of_3000_mutated_TorchSharp_files_finds_no_crash_hang_or_memory_blowup()
    {
        await Task.Yield();
        var json = Scratch("fuzz.json");
        File.Delete(json);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // A fixed number of inputs, not a time: the verdict must not hang on how loaded the machine is (make fuzz-python runs for a time).
        var (code, _, err) = Fuzz(TimeSpan.FromSeconds(100), "--max-inputs", "3000", "--seconds", "1000000", "--seed", "1", "--json", json, "--keep", Scratch("fuzz-failures"));
        Assert.True(File.Exists(json), $"the fuzz exited {code} without a result: {err}");
        var result = JsonNode.Parse(File.ReadAllText(json))!;
        var outcomes = result["outcomes"]!;
        int N(string k) => outcomes[k]!.GetValue<int>();
        var failures = result["failures"]!.ToJsonString();
        Assert.True(N("crash") == 0 && N("hang") == 0 && N("over_cap") == 0,
            $"crash {N("crash")}, hang {N("hang")}, over_cap {N("over_cap")} (inputs kept in {Scratch("fuzz-failures")}): {failures}");
        Assert.Equal(0, code);
        // Non-trivial: thousands of inputs, every seed read back identical, most mutations refused cleanly.
        Assert.True(result["inputs"]!.GetValue<int>() == 3000, $"{result["inputs"]} of 3000 inputs in {watch.Elapsed.TotalSeconds:F0} s");
        Assert.True(N("accepted_identical") >= 12, $"the real Module.save seeds should read back identical: {outcomes.ToJsonString()}");
        Assert.True(N("clean_error") > N("accepted_identical") + N("accepted_different"), outcomes.ToJsonString());
        // Every kind of structural mutation ran.
        var byMutation = result["by_mutation"]!.AsObject().Select(kv => kv.Key).ToHashSet();
        foreach (var m in new[] { "duplicate_entry", "swap_dtype", "huge_rank", "huge_dim", "truncate", "leb_field", "random" })
            Assert.Contains(m, byMutation);
    }

    [SkippableFact(Timeout = 240_000)]
    public async Task Every_attack_file_gets_a_clean_error_naming_the_file()
    {
        await Task.Yield();
        var files = Directory.GetFiles(AttackDir, "*.bin");
        Assert.True(files.Length >= 25, $"the attack corpus {AttackDir} has {files.Length} files");
        Assert.All(files, f =>
        {
            var r = Check(f);
            Assert.True(r["outcome"]!.GetValue<string>() == "clean_error", $"{Path.GetFileName(f)}: {r.ToJsonString()}");
            Assert.Equal("TorchSharpFormatError", r["type"]!.GetValue<string>());
            Assert.StartsWith(f + ": ", r["message"]!.GetValue<string>());
        });
    }

    public static TheoryData<string, string[]> PinnedCases => new()
    {
        { "duplicate_key", ["entry 15 of 16 'fc.weight'", "duplicate key 'fc.weight'", "first as entry 0"] },
        { "rank_200000", ["entry 0 of 15 'fc.weight' (float32): rank", "expected at most 64 dimensions (PyTorch's limit), found 200000"] },
        { "rank_65", ["expected at most 64 dimensions (PyTorch's limit), found 65"] },
        { "dim_2pow62_plus1", ["'fc.weight' (float32): dim 0 of 2: expected at most 2^62, found 4611686018427387905"] },
        { "dim_2pow62", ["'fc.weight': float32 [4611686018427387904, 4]: expected a size that fits 2^63-1 bytes"] },
        { "stride_overflow", ["'fc.bias': float32 [0, 4611686018427387904, 4611686018427387904]: expected a size that fits 2^63-1 bytes", "a 0 counted as 1"] },
        { "numel_itemsize_overflow", ["float32 [2147483648, 2147483648]: expected a size that fits 2^63-1 bytes, found 18446744073709551616 bytes"] },
        { "more_than_remains", ["float32 [1000, 1000]: expected 4000000 bytes of data at byte 17, the file has 483 left (it is 500 bytes)"] },
        { "truncated_in_data", ["entry 1 of 15 'fc.bias': float32 [3]: expected 12 bytes of data", "the file has 6 left"] },
        { "truncated_in_key", ["entry 1 of 15: key: expected 7 bytes", "the file has 3 left"] },
        { "truncated_in_leb128", ["key length: expected a LEB128 number at byte 1, the file ends at byte 2"] },
        { "empty", ["entry count: expected a LEB128 number at byte 0, the file ends at byte 0"] },
        { "count_2pow62", ["the file declares 4611686018427387904 entries, but it ends after 15"] },
        { "key_invalid_utf8", ["entry 0 of 15: key of 11 bytes at byte 1: expected UTF-8", "invalid start byte"] },
        { "key_length_2pow31", ["expected a .NET string length below 2^31, found 2147483648"] },
        { "dtype_9177", ["'fc.weight': dtype at byte 11", "found unknown TorchSharp ScalarType code 9177"] },
        { "dtype_float8", ["found unknown TorchSharp ScalarType code 23 (libtorch's Float8_e5m2, which TorchSharp 0.107 lacks)"] },
        { "leb128_2pow63", ["fits TorchSharp's signed 64-bit long, found 9223372036854775808"] },
        { "leb128_unterminated", ["entry count: expected a LEB128 number of at most 10 bytes"] },
        { "bool_byte_2", ["'b_bool': bool [2, 3]: element 0: expected byte 0 or 1, found 0x02"] },
        { "trailing_bytes", ["after 15 entries: expected the end of the file at byte 498, found 7 more bytes"] },
        { "tensor_save", ["this is a single tensor saved with Tensor.Save (float32 [3, 4]), not a Module.save state dict: load it with torch.Tensor.Load"] },
        { "optimizer_adam", ["this looks like a TorchSharp optimizer state (optimizer.save_state_dict) of Adam: 1 param group(s) (lr 0.001) and 2 parameter state(s)", "not a Module.save state dict"] },
        { "optimizer_sgd", ["this looks like a TorchSharp optimizer state (optimizer.save_state_dict) of SGD: 1 param group(s) (lr 0.01)"] },
    };

    [SkippableTheory(Timeout = 240_000)]
    [MemberData(nameof(PinnedCases))]
    public async Task A_bad_file_is_refused_with_a_message_naming_file_entry_and_what_was_expected(string attack, string[] fragments)
    {
        await Task.Yield();
        var path = Path.Combine(AttackDir, attack + ".bin");
        var r = Check(path);
        Assert.Equal("clean_error", r["outcome"]!.GetValue<string>());
        var message = r["message"]!.GetValue<string>();
        Assert.StartsWith(path + ": ", message);
        foreach (var fragment in fragments) Assert.Contains(fragment, message);
    }

    [SkippableFact(Timeout = 240_000)]
    public async Task The_real_TorchSharp_samples_are_told_apart_by_their_structure()
    {
        // The positive control for the refusals above: the same reader reads a real Module.save file,
        // and the real Tensor.Save and optimizer files (not copies) are named for what they are.
        await Task.Yield();
        var linear = Check(Path.Combine(SampleDir, "linear.bin"));
        Assert.Equal("accepted", linear["outcome"]!.GetValue<string>());
        Assert.Equal(new[] { "weight", "bias" }, linear["keys"]!.AsArray().Select(k => k!.GetValue<string>()));
        Assert.Contains("single tensor saved with Tensor.Save", Check(Path.Combine(SampleDir, "tensor.bin"))["message"]!.GetValue<string>());
        Assert.Contains("optimizer state (optimizer.save_state_dict) of Adam", Check(Path.Combine(SampleDir, "adam.dat"))["message"]!.GetValue<string>());
        Assert.Contains("optimizer state (optimizer.save_state_dict) of SGD", Check(Path.Combine(SampleDir, "sgd.dat"))["message"]!.GetValue<string>());
    }

    [SkippableFact(Timeout = 120_000)]
    public async Task The_python_writer_writes_what_TorchSharp_writes_byte_for_byte()
    {
        await Task.Yield();
        const string script = """
            import io, sys, torch
            from torchconformance.formats import tsnative
            d = sys.argv[1]
            b = io.BytesIO(); tsnative.write_tensor(b, torch.arange(12, dtype=torch.float32).reshape(3, 4))
            assert b.getvalue() == open(d + "/tensor.bin", "rb").read(), "Tensor.Save differs"
            assert torch.equal(tsnative.load_tensor(d + "/tensor.bin"), torch.arange(12, dtype=torch.float32).reshape(3, 4))
            b = io.BytesIO(); tsnative.write_state_dict(b, tsnative.load(d + "/linear.bin"))
            assert b.getvalue() == open(d + "/linear.bin", "rb").read(), "Module.save differs"
            print("same")
            """;
        var (code, stdout, stderr) = Discovery.Run([HostPython(), "-c", script, SampleDir], TimeSpan.FromSeconds(60), ("PYTHONPATH", Repo.PythonPackageDir));
        Assert.True(code == 0 && stdout.Trim() == "same", $"exit {code}: {stdout} {stderr}");
    }

    [SkippableFact(Timeout = 300_000)]
    public async Task A_duplicate_key_through_the_worker_is_a_load_error_naming_the_key_and_the_worker_goes_on()
    {
        // Through the real PyTorch worker (pythonnet host), as the matrix consumes a torchsharp_native artifact.
        await Task.Yield();
        var py = MatrixFixture.Suite.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available)
            .OrderBy(r => r.Where.StartsWith("host") ? 0 : 1).FirstOrDefault();
        MatrixFixture.SkipOrFailWhenMissing(py is null ? "needs a PyTorch runtime" : null);
        var good = Path.Combine(Repo.FixturesDir, "torchsharp-0.107", "lenet.torchsharp_native.bin");
        var bad = Scratch("lenet-duplicate-key.bin");
        var (code, _, err) = Fuzz(TimeSpan.FromSeconds(60), "--mutate", "duplicate_key", "--input", good, "--output", bad);
        Assert.True(code == 0, err);

        using var pool = new WorkerPool(TimeSpan.FromSeconds(120));
        JsonObject Args(string path) => new() { ["case"] = "lenet", ["route"] = "torchsharp_native", ["mode"] = "default", ["path"] = path, ["seed"] = 0 };
        var reply = pool.Send(py!, Ops.Consume, Args(bad), TimeSpan.FromSeconds(120));
        var error = Assert.IsType<Reply.Answered>(reply).Response.Error;
        Assert.NotNull(error);
        Assert.Equal(ErrorKinds.LoadError, error!.Kind);
        Assert.StartsWith(bad + ": TorchSharpFormatError: entry 10 of 11 'fc3.bias': duplicate key 'fc3.bias'", error.Message);
        Assert.NotNull(pool.Send(py!, Ops.Consume, Args(good), TimeSpan.FromSeconds(120)).Result);
        Assert.Equal(1, pool.Starts[py!.Id]);
    }
}
