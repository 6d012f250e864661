using Conformance.Orchestrator;
using Conformance.Orchestrator.Check;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// One `conformance check` over user-shaped files from every producer: the golden fixtures (state dicts
/// and checkpoints of each PyTorch, a TorchSharp Module.save file, TorchScript, a pickled whole model,
/// the legacy format) and tests/check-samples (Hugging Face sharded safetensors and bin folders, a
/// DataParallel state dict, a re-zipped deflated file; python3 -m torchconformance check-samples).
/// Real workers of every runtime read each file; the specs pin the inventory, the readers' results
/// and the verdict.
/// </summary>
public sealed class CheckFixture : IDisposable
{
    public static readonly string Root = RepoLayout.Find().Root;

    public static readonly string[] Producers = ["pytorch-1.13", "pytorch-2.6", "pytorch-2.14"];

    public CheckRun Run { get; }
    public Suite Suite { get; }
    public string? Missing { get; }

    public CheckFixture()
    {
        Suite = new Suite(RepoLayout.Find());
        var missing = Suite.Runtimes.Where(r => !r.Available).Select(r => $"{r.Id}: {r.MissingReason}").ToList();
        Missing = missing.Count == 0 ? null : string.Join("; ", missing);
        var paths = Producers.SelectMany(p => new[] { $"fixtures/{p}/lenet.pickle.pt", $"fixtures/{p}/ckpt_adam.checkpoint.pt" })
            .Concat([
                "fixtures/torchsharp-0.107/lenet.torchsharp_native.bin",
                "fixtures/pytorch-2.6/lenet.torchscript_script.bin",
                "fixtures/pytorch-1.13/lenet.pickled_model.pt",
                "fixtures/pytorch-1.13/lenet.pickle_legacy.pt",
                "tests/check-samples",
                "tests/samples/codec/conj-neg.pt",
                "fixtures/pytorch-2.6/storage_offsets.pickle.pt",
            ]).Select(p => Path.Combine(Root, p)).ToList();
        var options = RunnerOptions.FromEnvironment(Path.Combine(Root, "artifacts", "tests", "check"));
        Run = new FileCheck(Suite, options).Run(paths);
    }

    public CheckedFile File(string relative) =>
        Run.Files.SingleOrDefault(f => f.Path == Path.Combine(Root, relative)) ?? throw new KeyNotFoundException($"{relative} was not checked; checked: {string.Join(", ", Run.Files.Select(f => f.Path))}");

    public void Dispose() { }
}

[Trait("Category", "runtime")]
public sealed class CheckSpecs(CheckFixture fx, ITestOutputHelper output) : IClassFixture<CheckFixture>
{
    private void RequireRuntimes()
    {
        if (fx.Missing is null) return;
        if (Suite.RequireAll) Assert.Fail($"CONFORMANCE_REQUIRE_ALL=1 and a runtime is missing: {fx.Missing}");
        Skip.If(true, "missing: " + fx.Missing);
    }

    private void Show(CheckedFile f)
    {
        output.WriteLine(f.Verdict.Line);
        foreach (var r in f.Readers) output.WriteLine($"  {r.Runtime} {r.Reader}: {r.Status} {r.Message}");
    }

    private static ReaderResult Reader(CheckedFile f, string runtime, string reader) =>
        f.Readers.SingleOrDefault(r => r.Runtime == runtime && r.Reader == reader)
        ?? throw new KeyNotFoundException($"no reader '{reader}' of {runtime} on {f.Path}; have: {string.Join(", ", f.Readers.Select(r => r.Runtime + " " + r.Reader))}");

    [SkippableTheory]
    [InlineData("pytorch-1.13")]
    [InlineData("pytorch-2.6")]
    [InlineData("pytorch-2.14")]
    public void A_state_dict_from_each_pytorch_loads_in_dotnet_with_every_tensor_identical(string producer)
    {
        RequireRuntimes();
        var f = fx.File($"fixtures/{producer}/lenet.pickle.pt");
        Show(f);
        Assert.Equal("torch_zip", f.Format);
        var tensors = f.Inventory!["tensors"]!.AsArray();
        Assert.Equal(10, tensors.Count);
        Assert.Equal("conv1.weight", (string)tensors[0]!["key"]!);
        Assert.All(tensors, t => Assert.Matches("^[0-9a-f]{64}$", (string)t!["sha256"]!));
        Assert.Contains(f.Inventory["globals"]!.AsArray(), g => (string)g!["name"]! == "torch._utils._rebuild_tensor_v2" && (bool)g["allowed"]!);
        foreach (var reader in new[] { "PyBridge load_py (strict)", "TorchCheckpoints TorchCheckpoint.Load", "PyBridge PyTorchUnpickler.UnpickleStateDict" })
            Assert.True(Reader(f, "torchsharp-0.107", reader).Identical, reader);
        foreach (var rt in CheckFixture.Producers)
            Assert.True(Reader(f, rt, "torch.load(map_location='cpu')").Identical, rt);
        Assert.True(f.Verdict.LoadsInDotNet);
        Assert.StartsWith("✓ loads in .NET", f.Verdict.Line);
    }

    [SkippableTheory]
    [InlineData("pytorch-1.13")]
    [InlineData("pytorch-2.6")]
    [InlineData("pytorch-2.14")]
    public void A_checkpoint_from_each_pytorch_is_named_a_checkpoint_read_whole_by_the_codec_and_refused_by_load_py(string producer)
    {
        RequireRuntimes();
        var f = fx.File($"fixtures/{producer}/ckpt_adam.checkpoint.pt");
        Show(f);
        var keys = f.Inventory!["tensors"]!.AsArray().Select(t => (string)t!["key"]!).ToList();
        Assert.Contains("model_state_dict/fc1.weight", keys);
        Assert.Contains("optimizer_state_dict/state/0/exp_avg_sq", keys);
        Assert.Contains(f.Inventory["others"]!.AsArray(), o => (string)o!["key"]! == "epoch" && (string)o["value"]! == "3");
        Assert.Contains(f.Inventory["others"]!.AsArray(), o => ((string)o!["key"]!).EndsWith("param_groups/0/lr", StringComparison.Ordinal));
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load").Identical);
        var loadPy = Reader(f, "torchsharp-0.107", "PyBridge load_py (strict)");
        Assert.Equal("failed", loadPy.Status);
        Assert.Contains("InvalidCastException", loadPy.Message);
        Assert.StartsWith("✓ a training checkpoint", f.Verdict.Line);
        Assert.Contains("model_state_dict", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void Where_PyBridge_reads_other_bytes_and_TorchCheckpoints_reads_them_right_the_remedy_names_TorchCheckpoints()
    {
        RequireRuntimes();
        // Three views of one storage at offsets 0, 4 and 20: PyBridge cannot rebuild views at an offset (it refuses the file).
        var f = fx.File("fixtures/pytorch-2.6/storage_offsets.pickle.pt");
        Assert.True(f.Verdict.LoadsInDotNet, f.Verdict.Line);
        Assert.Contains(f.Readers, r => r.Reader.StartsWith("PyBridge", StringComparison.Ordinal) && r.Status is "failed" or "differs");
        Assert.Contains(f.Readers, r => r.Reader == "TorchCheckpoints TorchCheckpoint.Load" && r.Identical);
        Assert.StartsWith("TorchCheckpoints reads it: StateDict.Load(path), or model.load_pytorch(path)", f.Verdict.Remedy);
    }

    /// <summary>torch 2.14's conj and neg bits: the codec's TorchSharp tensors, in memory and mapped, hold the
    /// values torch.load gives (the bits resolved), compared by the check against PyTorch's own reading.</summary>
    [SkippableFact]
    public void Conj_and_neg_tensors_are_read_by_the_codec_in_TorchSharp_as_torch_load_gives_them()
    {
        RequireRuntimes();
        var f = fx.File("tests/samples/codec/conj-neg.pt");
        Show(f);
        Assert.True(Reader(f, "pytorch-2.14", "torch.load(weights_only=True)").Identical);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load").Identical, Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load").Message);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.LoadMapped").Identical, Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.LoadMapped").Message);
    }

    [SkippableFact]
    public void Torch_1_13s_weights_only_reader_is_shown_failing_on_a_checkpoint_while_the_others_read_it()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/pytorch-2.6/ckpt_adam.checkpoint.pt");
        Assert.Equal("failed", Reader(f, "pytorch-1.13", "torch.load(weights_only=True)").Status);
        Assert.True(Reader(f, "pytorch-2.6", "torch.load(weights_only=True)").Identical);
        Assert.True(Reader(f, "pytorch-2.14", "torch.load(mmap=True)").Identical);
    }

    [SkippableFact]
    public void A_torchsharp_module_save_file_is_read_by_module_load_and_by_pytorch()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/torchsharp-0.107/lenet.torchsharp_native.bin");
        Show(f);
        Assert.Equal("torchsharp_native", f.Format);
        Assert.Equal(10, f.Inventory!["tensors"]!.AsArray().Count);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchSharp Module.load (strict)").Identical);
        Assert.True(f.Verdict.LoadsInDotNet);
    }

    [SkippableFact]
    public void A_torchscript_archive_says_use_torch_jit_load_and_the_codec_refuses_it_by_name()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/pytorch-2.6/lenet.torchscript_script.bin");
        Show(f);
        Assert.Equal("torchscript", f.Format);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchSharp torch.jit.load").Identical);
        var codec = Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load");
        Assert.Equal("failed", codec.Status);
        Assert.Contains("TorchScript", codec.Message);
        Assert.StartsWith("✓ TorchScript", f.Verdict.Line);
        Assert.Contains("torch.jit.load", f.Verdict.Remedy);
    }

    [SkippableTheory]
    [InlineData("hf-sharded-safetensors", "model.safetensors.index.json")]
    [InlineData("hf-sharded-bin", "pytorch_model.bin.index.json")]
    public void A_hugging_face_sharded_folder_is_read_by_its_index_and_loads_with_load_checkpoint(string folder, string index)
    {
        RequireRuntimes();
        var f = fx.File($"tests/check-samples/{folder}");
        Show(f);
        Assert.Equal("hf_sharded", f.Format);
        Assert.Equal(index, (string)f.Inventory!["index"]!);
        Assert.Equal(2, f.Parts.Count);
        Assert.All(f.Parts, p => Assert.True(p.Verdict.LoadsInDotNet, p.Verdict.Line));
        // In the index's order: save_pretrained writes it with sorted keys.
        Assert.Equal(["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"], f.Inventory["tensors"]!.AsArray().Select(t => (string)t!["key"]!));
        Assert.Empty(f.Inventory["index_problems"]!.AsArray());
        Assert.True(Reader(f, "torchsharp-0.107", "PyBridge load_checkpoint (strict)").Identical);
        Assert.StartsWith("✓ a Hugging Face sharded checkpoint (2 shards", f.Verdict.Line);
        if (folder.Contains("safetensors"))
            Assert.Equal("pt", (string)f.Parts[0].Inventory!["metadata"]!["format"]!);
    }

    [SkippableFact]
    public void A_data_parallel_state_dict_gets_the_strip_the_prefix_remedy()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/module_prefixed.pt");
        Show(f);
        Assert.False(f.Verdict.LoadsInDotNet);
        Assert.Contains("`module.`", f.Verdict.Line);
        Assert.StartsWith("strip the `module.` prefix", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void A_deflated_zip_is_shown_read_wrong_by_torch_mmap_and_right_by_the_others()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/deflated.pt");
        Show(f);
        // torch.load(mmap=True) maps the entries as stored: deflated ones come back as compressed bytes.
        Assert.Equal("differs", Reader(f, "pytorch-2.6", "torch.load(mmap=True)").Status);
        Assert.Equal("differs", Reader(f, "pytorch-2.14", "torch.load(mmap=True)").Status);
        Assert.True(Reader(f, "pytorch-2.6", "torch.load (default)").Identical);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.LoadMapped").Identical);
        Assert.StartsWith("⚠ `mmap=True` reads this file wrong", f.Verdict.Line);
    }

    [SkippableFact]
    public void A_file_saved_from_cuda_is_read_onto_the_cpu_by_every_dotnet_reader_and_by_pytorch_only_with_map_location()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/cuda_tagged.pt");
        Show(f);
        Assert.All(f.Inventory!["storage"]!.AsArray(), s => Assert.Equal("cuda:0", (string)s!["location"]!));
        foreach (var reader in new[] { "PyBridge load_py (strict)", "TorchCheckpoints TorchCheckpoint.Load", "TorchCheckpoints TorchCheckpoint.LoadMapped" })
            Assert.True(Reader(f, "torchsharp-0.107", reader).Identical, reader);
        foreach (var rt in CheckFixture.Producers)
        {
            Assert.True(Reader(f, rt, "torch.load(map_location='cpu')").Identical, rt);
            Assert.Equal("failed", Reader(f, rt, "torch.load (default)").Status);
        }
        Assert.Contains("saved from cuda:0", f.Verdict.Line);
        Assert.Contains("map_location='cpu'", f.Verdict.Line);
        Assert.Contains("map_location='cpu'", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void A_pickled_whole_model_is_never_executed_and_names_the_classes_it_needs()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/pytorch-1.13/lenet.pickled_model.pt");
        Show(f);
        Assert.Contains(f.Inventory!["globals"]!.AsArray(), g => (string)g!["name"]! == "torchconformance.models.TheModelClass" && !(bool)g["allowed"]!);
        Assert.Contains("never executes", (string)f.Inventory["inventory_error"]!);
        // Readers that would run the pickle's globals are listed and not run, on every runtime.
        Assert.All(f.Readers.Where(r => r.Reader == "torch.load (default)" && r.Runtime == "pytorch-1.13"), r => Assert.Equal("not_run", r.Status));
        Assert.StartsWith("✗ a pickled whole model", f.Verdict.Line);
        Assert.Contains("TheModelClass", f.Verdict.Line);
        Assert.Contains("torch.save(model.state_dict()", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void A_legacy_file_loads_with_TorchCheckpoints_where_PyBridge_refuses_it_and_the_remedy_names_both_ways()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/pytorch-1.13/lenet.pickle_legacy.pt");
        Show(f);
        Assert.Equal("torch_legacy", f.Format);
        // The codec reads the legacy format (torch < 1.6) as torch.load does, every tensor identical (PyBridge reads only the zip format).
        Assert.True(f.Verdict.LoadsInDotNet);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load").Identical);
        Assert.True(Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.LoadMapped").Identical);
        Assert.True(Reader(f, "pytorch-2.14", "torch.load(weights_only=True)").Identical);
        Assert.StartsWith("✓ legacy torch.save format", f.Verdict.Line);
        Assert.Contains("StateDict.Load(path)", f.Verdict.Remedy);
        Assert.Contains("torch >= 1.6", f.Verdict.Remedy);
    }

    [SkippableTheory]
    [InlineData("script_function.pt", 0, "forward")]
    [InlineData("script_no_params.pt", 0, "forward")]
    [InlineData("script_list.pt", 2, "forward")]
    [InlineData("script_tuple.pt", 2, "forward")]
    [InlineData("script_dict.pt", 2, "forward")]
    [InlineData("script_method.pt", 2, "embed")]
    public void TorchScript_that_torch_jit_load_loads_counts_as_loading_with_no_parameters_with_list_tuple_or_dict_outputs_and_with_an_exported_method(string sample, int tensors, string method)
    {
        RequireRuntimes();
        var f = fx.File($"tests/check-samples/{sample}");
        Show(f);
        Assert.Equal("torchscript", f.Format);
        Assert.Equal(tensors, f.Inventory!["tensors"]!.AsArray().Count);
        Assert.Contains(method, f.Inventory["methods"]!.AsArray().Select(m => (string)m!));
        var jit = Reader(f, "torchsharp-0.107", "TorchSharp torch.jit.load");
        Assert.True(jit.Identical, jit.Message);
        if (tensors == 0) Assert.Equal("loaded; it holds no tensors, as PyTorch read", jit.Message);
        foreach (var rt in CheckFixture.Producers) Assert.True(Reader(f, rt, "torch.jit.load").Identical, rt);
        Assert.Equal(CheckOutcome.Loads, f.Verdict.Outcome);
        Assert.StartsWith("✓ TorchScript", f.Verdict.Line);
        Assert.DoesNotContain("TorchCheckpoint", f.Verdict.Line);
    }

    [SkippableFact]
    public void Torch_1_13s_weights_only_on_TorchScript_is_shown_returning_the_module_it_loads_not_missing_tensors()
    {
        RequireRuntimes();
        var f = fx.File("fixtures/pytorch-2.6/lenet.torchscript_script.bin");
        var old = Reader(f, "pytorch-1.13", "torch.load(weights_only=True)");
        Assert.True(old.Identical, old.Message);
        Assert.Contains("returned a RecursiveScriptModule", old.Message);
        // torch 2.x refuses it in its own words.
        Assert.Contains("weights_only", Reader(f, "pytorch-2.6", "torch.load(weights_only=True)").Message);
    }

    [SkippableFact]
    public void A_torchsharp_optimizer_state_is_its_own_kind_read_by_optimizer_load_state_dict_and_exits_as_not_a_model_file()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/torchsharp_adam_state.bin");
        Show(f);
        Assert.Equal("torchsharp_optimizer", f.Format);
        Assert.Contains("of Adam", (string)f.Inventory!["description"]!);
        var own = Reader(f, "torchsharp-0.107", "TorchSharp optimizer.load_state_dict");
        Assert.Equal("read", own.Status);
        // Adam over a Linear(4, 3): exp_avg and exp_avg_sq of the weight and the bias, and each step.
        Assert.True(own.Tensors >= 4, own.Message);
        Assert.Equal(CheckOutcome.NotAModel, f.Verdict.Outcome);
        Assert.StartsWith("⚠ a TorchSharp optimizer state", f.Verdict.Line);
        Assert.Contains("optimizer.load_state_dict(path)", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void A_tensor_save_file_is_its_own_kind_read_by_tensor_load_and_exits_as_not_a_model_file()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/torchsharp_tensor.bin");
        Show(f);
        Assert.Equal("torchsharp_tensor", f.Format);
        Assert.Equal([2, 3], f.Inventory!["tensors"]![0]!["shape"]!.AsArray().Select(d => (int)d!));
        Assert.True(Reader(f, "torchsharp-0.107", "TorchSharp Tensor.Load").Identical);
        Assert.Equal(CheckOutcome.NotAModel, f.Verdict.Outcome);
        Assert.StartsWith("⚠ a single tensor saved with Tensor.Save", f.Verdict.Line);
    }

    [SkippableFact]
    public void A_pytorch_optimizer_state_dict_is_tried_with_pybridges_optimizer_load_py_and_loads_with_pytorchs_bytes()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/pytorch_adam_state.pt");
        Show(f);
        var loadPy = Reader(f, "torchsharp-0.107", "PyBridge optimizer.load_py (Adam)");
        Assert.True(loadPy.Identical, loadPy.Message);
        // TorchCheckpoints' in-place reader of the same file, into the same optimizer, holds PyTorch's bytes too.
        var loadPytorch = Reader(f, "torchsharp-0.107", "TorchCheckpoints optimizer.load_pytorch (Adam)");
        Assert.True(loadPytorch.Identical, loadPytorch.Message);
        Assert.Equal(CheckOutcome.NotAModel, f.Verdict.Outcome);
        Assert.StartsWith("⚠ a PyTorch optimizer state dict", f.Verdict.Line);
        Assert.Contains("PyBridge optimizer.load_py (Adam) and TorchCheckpoints optimizer.load_pytorch (Adam) load it", f.Verdict.Line);
        Assert.DoesNotContain("training checkpoint", f.Verdict.Line);
        Assert.Contains("optimizer.load_pytorch(path)", f.Verdict.Remedy);
        Assert.Contains("optimizer.load_py(path)", f.Verdict.Remedy);
    }

    [SkippableFact]
    public void A_checkpoint_cut_to_60_percent_is_named_a_damaged_torch_save_file_with_where_it_ends_and_torchs_own_error()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/truncated_60pct.pt");
        Show(f);
        Assert.Equal("zip_damaged", f.Format);
        Assert.Equal(CheckOutcome.DoesNotLoad, f.Verdict.Outcome);
        Assert.StartsWith("✗ a damaged torch.save file: it ends at byte 4,863 without the zip's closing directory, so it was cut short; the last entry begun is 'ckpt_adam.checkpoint/data/", f.Verdict.Line);
        var torchSays = Reader(f, "pytorch-2.14", "torch.load(weights_only=True)");
        Assert.Equal("failed", torchSays.Status);
        Assert.Contains("torch.load says: " + torchSays.Message, f.Verdict.Line);
        Assert.DoesNotContain("save it with torch.save", f.Verdict.Remedy);
        Assert.Contains("end-of-central-directory", Reader(f, "torchsharp-0.107", "TorchCheckpoints TorchCheckpoint.Load").Message);
    }

    [SkippableFact]
    public void An_empty_file_is_called_empty_and_exits_as_not_a_model_file()
    {
        RequireRuntimes();
        var f = fx.File("tests/check-samples/empty.pt");
        Assert.Equal("empty", f.Format);
        Assert.Equal(CheckOutcome.NotAModel, f.Verdict.Outcome);
        Assert.StartsWith("✗ an empty file (0 bytes)", f.Verdict.Line);
    }

    [SkippableFact]
    public void The_report_renders_as_markdown_json_and_html()
    {
        RequireRuntimes();
        var dir = Path.Combine(CheckFixture.Root, "artifacts", "tests", "check-report");
        var written = CheckReport.Write(fx.Run, dir, json: true, html: true);
        Assert.Equal(3, written.Count);
        var md = System.IO.File.ReadAllText(Path.Combine(dir, "check.md"));
        Assert.Contains("| runtime | reader | result |", md);
        Assert.Contains("## `" + Path.Combine(CheckFixture.Root, "tests/check-samples/module_prefixed.pt") + "`", md);
        var json = System.Text.Json.Nodes.JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(dir, "check.json")))!;
        Assert.Equal(fx.Run.Files.Count, json["files"]!.AsArray().Count);
        Assert.Contains("<table>", System.IO.File.ReadAllText(Path.Combine(dir, "check.html")));
        output.WriteLine(md.Length > 6000 ? md[..6000] : md);
    }

    [SkippableFact]
    public void The_cli_exits_0_when_a_file_loads_1_when_one_does_not_and_2_for_a_missing_path_and_compares_a_twin()
    {
        RequireRuntimes();
        var dir = Path.Combine(CheckFixture.Root, "artifacts", "tests", "check-cli");
        var cli = $"dotnet {CliSpecs.Cli()} check";
        var (ok, okText) = Shell.Run($"{cli} fixtures/pytorch-2.6/lenet.pickle.pt --model-twin lenet --json --html --out {dir}", TimeSpan.FromMinutes(5), output);
        Assert.True(ok == 0, okText);
        var json = System.Text.Json.Nodes.JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(dir, "check.json")))!;
        var twin = json["files"]![0]!["model_twin"]!.AsArray();
        Assert.Contains(twin, t => (string)t!["runtime"]! == "torchsharp-0.107" && (string)t["status"]! == "within");
        Assert.True(System.IO.File.Exists(Path.Combine(dir, "check.html")));
        var (bad, badText) = Shell.Run($"{cli} tests/check-samples/module_prefixed.pt --out {dir}", TimeSpan.FromMinutes(5), output);
        Assert.True(bad == 1, badText);
        Assert.Contains("strip the `module.` prefix", badText);
        var (usage, usageText) = Shell.Run($"{cli} no/such/file.pt", TimeSpan.FromMinutes(2), output);
        Assert.Equal(2, usage);
        Assert.Contains("no/such/file.pt: no such file or folder", usageText);
    }

    /// <summary>--dotnet: no Python; the codec's inventory holds the same keys, dtypes, shapes and SHA-256s PyTorch's does.</summary>
    [SkippableFact]
    public void The_dotnet_answer_asks_no_pytorch_and_its_codec_inventory_equals_pytorchs_tensor_for_tensor()
    {
        RequireRuntimes();
        var files = new[] { "fixtures/pytorch-2.6/lenet.pickle.pt", "fixtures/torchsharp-0.107/lenet.torchsharp_native.bin", "fixtures/pytorch-2.6/lenet.torchscript_script.bin", "tests/check-samples/cuda_tagged.pt" };
        var (code, text) = Shell.Run($"dotnet {CliSpecs.Cli()} check {string.Join(" ", files)} --dotnet --json", TimeSpan.FromMinutes(2), output);
        Assert.True(code == 0, text);
        var json = System.Text.Json.Nodes.JsonNode.Parse(text[..(text.LastIndexOf('}') + 1)])!["files"]!.AsArray();
        foreach (var (relative, got) in files.Zip(json))
        {
            Assert.All(got!["readers"]!.AsArray(), r => Assert.StartsWith("torchsharp-", (string)r!["runtime"]!));
            Assert.Contains("no PyTorch", (string)got["reference_runtime"]!);
            Assert.True((bool)got["loads_in_dotnet"]!, (string)got["verdict"]!);
            string Tensors(System.Text.Json.Nodes.JsonNode inv) => string.Join("\n", inv["tensors"]!.AsArray().Select(t => $"{t!["key"]} {t["dtype"]} {t["shape"]!.ToJsonString()} {t["sha256"]}"));
            Assert.Equal(Tensors(fx.File(relative).Inventory!), Tensors(got["inventory"]!));
        }
        // The codec keeps where each storage was saved from: the CUDA verdict needs no PyTorch either.
        Assert.Contains("saved from cuda:0", (string)json[3]!["verdict"]!);
    }

    /// <summary>--model-twin on a CUDA-saved file, a wrong twin, and a training checkpoint with the user's own input.</summary>
    [SkippableFact]
    public void A_twin_compares_on_every_runtime_with_map_location_for_cuda_files_fails_on_its_own_line_and_exit_code_and_takes_a_checkpoints_model_entry_and_the_users_input()
    {
        RequireRuntimes();
        var dir = Path.Combine(CheckFixture.Root, "artifacts", "tests", "check-twin");
        var cli = $"dotnet {CliSpecs.Cli()} check";
        System.Text.Json.Nodes.JsonNode Json(string args, int expected)
        {
            var (code, text) = Shell.Run($"{cli} {args} --json", TimeSpan.FromMinutes(3), output);
            Assert.True(code == expected, $"exit {code}, expected {expected}: {text}");
            return System.Text.Json.Nodes.JsonNode.Parse(text[..(text.LastIndexOf('}') + 1)])!["files"]![0]!;
        }

        // A file saved from CUDA: every PyTorch loads it with map_location='cpu' and the first is the reference, never TorchSharp.
        var cuda = Json("tests/check-samples/cuda_tagged.pt --model-twin mlp_dropout --input seed:3", 0);
        var twin = cuda["model_twin"]!.AsArray();
        Assert.Equal("reference", (string)twin[0]!["status"]!);
        Assert.StartsWith("pytorch-", (string)twin[0]!["runtime"]!);
        Assert.Contains("map_location='cpu'", (string)twin[0]!["message"]!);
        Assert.All(twin.Skip(1), t => Assert.Equal("within", (string)t!["status"]!));
        Assert.Equal(4, twin.Count);
        Assert.Equal(80, twin[0]!["values"]!.AsArray().Count); // mlp_dropout: its input pattern has 8 rows, 10 classes each
        Assert.StartsWith("✓ twin: loads on 4 runtimes", (string)cuda["twin_verdict"]!);

        // The wrong twin fails everywhere: its own line, exit 5, though the file itself loads in .NET.
        var wrong = Json("tests/check-samples/cuda_tagged.pt --model-twin lenet", 5);
        Assert.True((bool)wrong["loads_in_dotnet"]!);
        Assert.StartsWith("✗ twin: does not load on ", (string)wrong["twin_verdict"]!);
        Assert.Contains("(every runtime)", (string)wrong["twin_verdict"]!);
        Assert.Contains("Missing key(s)", (string)wrong["twin_verdict"]!);

        // A training checkpoint's model_state_dict into the twin, on the user's input: the values shown are the outputs for it.
        Directory.CreateDirectory(dir);
        var ones = Json("tests/check-samples/mlp_checkpoint.pt --model-twin mlp_dropout --input ones", 0)["model_twin"]!.AsArray();
        Assert.All(ones, t => Assert.Contains("its 'model_state_dict' loaded into mlp_dropout", (string)t!["message"]!));
        var seed = Json("tests/check-samples/mlp_checkpoint.pt --model-twin mlp_dropout --input seed:1", 0)["model_twin"]!.AsArray();
        Assert.NotEqual(ones[0]!["values"]!.ToJsonString(), seed[0]!["values"]!.ToJsonString());
        Assert.All(ones, t => Assert.Equal(ones[0]!["values"]!.AsArray().Count, t!["values"]!.AsArray().Count));

        var (usage, usageText) = Shell.Run($"{cli} tests/check-samples/mlp_checkpoint.pt --input ones", TimeSpan.FromMinutes(1), output);
        Assert.Equal(2, usage);
        Assert.Contains("--model-twin", usageText);
    }

    /// <summary>
    /// From a folder outside the checkout: each documented exit code, paths as the user typed them (relative, with
    /// spaces and non-ASCII), no stack trace for any bad input, and nothing written without --out.
    /// </summary>
    [SkippableFact]
    public void From_another_folder_the_cli_gives_each_documented_exit_code_names_paths_as_typed_shows_no_stack_trace_and_writes_nothing_without_out()
    {
        RequireRuntimes();
        var here = Path.Combine(Path.GetTempPath(), $"check-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(here, "my models"));
        try
        {
            var samples = Path.Combine(CheckFixture.Root, "tests", "check-samples");
            foreach (var n in new[] { "script_list.pt", "script_function.pt", "torchsharp_adam_state.bin", "torchsharp_tensor.bin", "pytorch_adam_state.pt", "truncated_60pct.pt", "empty.pt" })
                System.IO.File.Copy(Path.Combine(samples, n), Path.Combine(here, "my models", n));
            System.IO.File.Copy(Path.Combine(samples, "script_dict.pt"), Path.Combine(here, "my models", "modèle ünïcode.pt"));
            var reportsBefore = Directory.Exists(Path.Combine(CheckFixture.Root, "reports", "check")) ? Directory.GetFiles(Path.Combine(CheckFixture.Root, "reports", "check")).Length : 0;
            (int Code, string Text) Check(string args) => Shell.Run($"cd '{here}' && dotnet {CliSpecs.Cli()} check {args}", TimeSpan.FromMinutes(3), output);

            var (loads, loadsText) = Check("'my models/script_list.pt' 'my models/script_function.pt' 'my models/modèle ünïcode.pt' --json");
            Assert.True(loads == 0, loadsText);
            var json = System.Text.Json.Nodes.JsonNode.Parse(loadsText[..(loadsText.LastIndexOf('}') + 1)])!;
            Assert.Equal(["my models/script_list.pt", "my models/script_function.pt", "my models/modèle ünïcode.pt"], json["files"]!.AsArray().Select(f => (string)f!["path"]!));
            Assert.Equal(0, (int)json["exit_code"]!);

            var (notModel, notModelText) = Check("'my models/torchsharp_adam_state.bin' 'my models/torchsharp_tensor.bin' 'my models/pytorch_adam_state.pt'");
            Assert.True(notModel == 3, notModelText);
            var (bad, badText) = Check("'my models/truncated_60pct.pt' 'my models/empty.pt'");
            Assert.True(bad == 1, badText);
            Assert.Contains("## `my models/truncated_60pct.pt`", badText);
            Assert.Contains("✗ a damaged torch.save file", badText);
            Assert.DoesNotContain("artifacts/check", badText);

            // /proc/self/mem exists and cannot be read from byte 0 (EIO), even by root: an I/O error, exit 4.
            var (io, ioText) = Check("/proc/self/mem");
            Assert.True(io == 4, ioText);
            Assert.Contains("✗ cannot read /proc/self/mem", ioText);
            // chmod 000 as a user who is not root (root reads it anyway): permission denied, exit 4.
            if (Environment.UserName == "root" && Shell.Run("command -v setpriv", TimeSpan.FromSeconds(10)).Code == 0)
            {
                var locked = Path.Combine(here, "my models", "locked.pt");
                System.IO.File.Copy(Path.Combine(samples, "script_list.pt"), locked);
                Assert.Equal(0, Shell.Run($"chmod 000 '{locked}' && chmod 777 '{here}' '{here}/my models'", TimeSpan.FromSeconds(10)).Code);
                var (denied, deniedText) = Shell.Run($"cd '{here}' && HOME='{here}' DOTNET_CLI_HOME='{here}' setpriv --reuid=65534 --regid=65534 --clear-groups dotnet {CliSpecs.Cli()} check 'my models/locked.pt'", TimeSpan.FromMinutes(1), output);
                Assert.True(denied == 4, deniedText);
                Assert.Contains("✗ cannot read my models/locked.pt: permission denied", deniedText);
                Assert.DoesNotMatch(@"\n\s+at \S+\(", deniedText);
                System.IO.File.Delete(locked);
                foreach (var f in Directory.GetFileSystemEntries(here).Where(f => Path.GetFileName(f) is not "my models"))
                    if (Directory.Exists(f)) Directory.Delete(f, true); else System.IO.File.Delete(f);
            }
            var (missing, missingText) = Check("'my models/no such.pt'");
            Assert.Equal(2, missing);
            Assert.Contains("my models/no such.pt: no such file or folder", missingText);
            Directory.CreateDirectory(Path.Combine(here, "nothing"));
            var (emptyDir, emptyDirText) = Check("nothing");
            Assert.Equal(2, emptyDir);
            foreach (var text in new[] { loadsText, notModelText, badText, ioText, missingText, emptyDirText })
                Assert.DoesNotMatch(@"\n\s+at \S+\(", text);
            // --json without --out: nothing in the user's folder but their files, nothing new under reports/.
            Assert.Equal(["my models", "nothing"], Directory.GetFileSystemEntries(here).Select(Path.GetFileName).Order());
            Assert.Equal(reportsBefore, Directory.Exists(Path.Combine(CheckFixture.Root, "reports", "check")) ? Directory.GetFiles(Path.Combine(CheckFixture.Root, "reports", "check")).Length : 0);
        }
        finally { Directory.Delete(here, recursive: true); }
    }
}

/// <summary>The bare errors users met become errors that name the file, the format found and what to do.</summary>
[Trait("Category", "runtime")]
public sealed class ClearErrorSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    private static readonly Lazy<Suite> Discovered = new(() => new Suite(RepoLayout.Find()));

    private (Runtime Ts, Runtime Py) Runtimes()
    {
        var ts = Discovered.Value.Runtimes.FirstOrDefault(r => r.Id == "torchsharp-0.107" && r.Available);
        var py = Discovered.Value.Runtimes.FirstOrDefault(r => r.Id == "pytorch-2.6" && r.Available);
        if (ts is null || py is null)
        {
            if (Suite.RequireAll) Assert.Fail("CONFORMANCE_REQUIRE_ALL=1 and torchsharp-0.107 or pytorch-2.6 is missing");
            Skip.If(true, "torchsharp-0.107 or pytorch-2.6 is missing");
        }
        return (ts!, py!);
    }

    private string Error(WorkerPool pool, Runtime rt, string op, System.Text.Json.Nodes.JsonObject args)
    {
        var reply = pool.Send(rt, op, args, Timeout);
        var error = Assert.IsType<Conformance.Orchestrator.Vocabulary.Reply.Answered>(reply).Response.Error;
        Assert.NotNull(error);
        output.WriteLine($"{rt.Id} {op}: {error!.Kind}: {error.Message}");
        return error.Kind + ": " + error.Message;
    }

    private static string Fixture(string relative) => Path.Combine(CheckFixture.Root, relative);

    [SkippableFact]
    public void A_checkpoint_dict_given_to_load_py_is_named_a_checkpoint_with_its_keys_and_the_remedy()
    {
        var (ts, _) = Runtimes();
        using var pool = new Conformance.Orchestrator.Workers.WorkerPool(Timeout);
        var path = Fixture("fixtures/pytorch-2.6/ckpt_adam.checkpoint.pt");
        var e = Error(pool, ts, "consume", new() { ["case"] = "lenet", ["route"] = "pickle", ["path"] = path });
        Assert.StartsWith($"load_error: {path} is a dict of 4 entries (epoch, model_state_dict, optimizer_state_dict, loss), a training checkpoint", e);
        Assert.Contains("load its 'model_state_dict' entry", e);
    }

    [SkippableFact]
    public void A_zip_given_as_safetensors_and_torchscript_given_as_a_state_dict_are_named_for_what_they_are()
    {
        var (ts, _) = Runtimes();
        using var pool = new Conformance.Orchestrator.Workers.WorkerPool(Timeout);
        var zip = Fixture("fixtures/pytorch-2.6/lenet.pickle.pt");
        Assert.StartsWith($"load_error: {zip} is a torch.save zip file, not what the safetensors route reads",
            Error(pool, ts, "consume", new() { ["case"] = "lenet", ["route"] = "safetensors", ["path"] = zip }));
        var script = Fixture("fixtures/pytorch-2.6/lenet.torchscript_script.bin");
        Assert.StartsWith($"load_error: {script} is a TorchScript archive (torch.jit.save), not a state dict: load it with torch.jit.load(path)",
            Error(pool, ts, "consume", new() { ["case"] = "lenet", ["route"] = "pickle", ["path"] = script }));
    }

    [SkippableFact]
    public void PyBridges_bare_strict_failure_names_the_missing_and_unexpected_keys_and_the_prefix_to_strip()
    {
        var (ts, _) = Runtimes();
        using var pool = new Conformance.Orchestrator.Workers.WorkerPool(Timeout);
        var e = Error(pool, ts, "consume", new() { ["case"] = "mlp_dropout", ["route"] = "pickle", ["path"] = Fixture("tests/check-samples/module_prefixed.pt") });
        Assert.Contains("Missing key(s) in state_dict: \"fc1.weight\"", e);
        Assert.Contains("Unexpected key(s) in state_dict: \"module.fc1.weight\"", e);
        Assert.Contains("starts with 'module.': strip the prefix", e);
    }

    [SkippableFact]
    public void A_state_dict_given_to_consume_checkpoint_is_named_a_bare_state_dict_on_both_sides()
    {
        var (ts, py) = Runtimes();
        using var pool = new Conformance.Orchestrator.Workers.WorkerPool(Timeout);
        var path = Fixture("fixtures/pytorch-2.6/lenet.pickle.pt");
        foreach (var rt in new[] { ts, py })
        {
            var e = Error(pool, rt, "consume_checkpoint", new() { ["optimizer"] = "adam", ["path"] = path });
            Assert.Contains("this file is a bare state dict (conv1.weight, conv1.bias", e);
            Assert.Contains("conformance check FILE", e);
            Assert.DoesNotContain("Missing key(s): ;", e);
        }
    }

    [SkippableFact]
    public void The_TorchSharp_worker_takes_a_cuda_device_and_without_a_cuda_backend_answers_not_applicable_naming_it()
    {
        var (ts, _) = Runtimes();
        using var pool = new Conformance.Orchestrator.Workers.WorkerPool(Timeout);
        var e = Error(pool, ts, "consume", new() { ["case"] = "lenet", ["route"] = "pickle", ["device"] = "cuda", ["path"] = Fixture("fixtures/pytorch-2.6/lenet.pickle.pt") });
        Assert.StartsWith("not_applicable: no TorchSharp CUDA backend in this worker", e);
        Assert.StartsWith("not_applicable: the TorchSharp worker knows devices cpu and cuda",
            Error(pool, ts, "consume", new() { ["case"] = "lenet", ["route"] = "pickle", ["device"] = "tpu", ["path"] = Fixture("fixtures/pytorch-2.6/lenet.pickle.pt") }));
    }
}
