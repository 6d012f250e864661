using System.Text.Json.Nodes;

namespace Conformance.Orchestrator.Check;

/// <summary>
/// The one-line verdict and remedy of a checked file, from its inventory and its readers' results.
/// Rules in order; the first that matches speaks. "Loads in .NET" means a TorchSharp-side reader read
/// every tensor with the bytes PyTorch read.
/// </summary>
public static class Verdicts
{
    internal static readonly Verdict Placeholder = new(false, "", "");

    /// <summary>The wrappers' key prefixes and what writes them, from the route table in cases.json (RealLayouts).</summary>
    private static readonly (string Prefix, string Source)[] Prefixes =
        [.. Matrix.RealLayouts.PrefixRoutes.Select(r => (Matrix.RealLayouts.KeyPrefix(r)!, Matrix.RealLayouts.PrefixSource(r)!))];

    private static bool IsDotNet(ReaderResult r) => r.Runtime.StartsWith("torchsharp", StringComparison.Ordinal);

    /// <summary>The verdict, with the device rules' warnings whose trait the file shows (the same rules as the report's device view).</summary>
    public static Verdict For(CheckedFile f)
    {
        var verdict = Decide(f) with { DeviceWarnings = Reports.DeviceRules.Detect(f.Format, f.Inventory).Select(r => r.Warning).ToList() };
        if (f.Twin.Count == 0) return verdict;
        var (twinOk, twinLine) = TwinVerdict(f.Twin);
        // A twin that does not load or compare is its own failure: exit 5, unless the file itself already fails graver.
        return verdict with
        {
            TwinLine = twinLine,
            Outcome = !twinOk && verdict.Outcome is CheckOutcome.Loads or CheckOutcome.NotAModel ? CheckOutcome.TwinFails : verdict.Outcome,
        };
    }

    /// <summary>The --model-twin line: ✓ when a PyTorch is the reference and every other runtime loads it within tolerance.</summary>
    private static (bool Ok, string Line) TwinVerdict(IReadOnlyList<TwinResult> twin)
    {
        if (twin.All(t => t.Status == "not_run")) return (true, $"➖ twin not run: {twin[0].Message}");
        var failed = twin.Where(t => t.Status == "failed").ToList();
        var differs = twin.Where(t => t.Status == "differs").ToList();
        var reference = twin.FirstOrDefault(t => t.Status == "reference");
        if (failed.Count > 0)
            return (false, $"✗ twin: does not load on {string.Join(", ", failed.Select(t => t.Runtime))}{(failed.Count == twin.Count ? " (every runtime)" : "")}: {Trim(failed[0].Message, 200)}");
        if (reference is null) return (false, "✗ twin: no PyTorch runtime loaded it, so no eval output was compared");
        if (differs.Count > 0) return (false, $"✗ twin: eval outputs differ from {reference.Runtime}'s on {string.Join(", ", differs.Select(t => t.Runtime))}: {differs[0].Message}");
        var max = twin.Where(t => t.MaxAbsDiff is not null).Max(t => t.MaxAbsDiff!.Value);
        return (true, $"✓ twin: loads on {twin.Count} runtimes; eval outputs agree with {reference.Runtime}'s (max abs diff {max:g3})");
    }

    /// <summary>A training checkpoint's model state dict entry (model_state_dict, …, then any key naming a model), or null.</summary>
    public static string? ModelEntry(JsonObject? inventory)
    {
        var top = inventory?["top_level"]?["keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToList() ?? [];
        return top.FirstOrDefault(k => k.Contains("model", StringComparison.OrdinalIgnoreCase) && k.Contains("state", StringComparison.OrdinalIgnoreCase))
               ?? top.FirstOrDefault(k => k == "state_dict")
               ?? top.FirstOrDefault(k => k.Contains("model", StringComparison.OrdinalIgnoreCase));
    }

    private static Verdict Decide(CheckedFile f)
    {
        var inv = f.Inventory;
        var dotnet = f.Readers.Where(IsDotNet).ToList();
        var good = dotnet.Where(r => r.Identical).ToList();
        var bad = dotnet.Where(r => r.Status is "failed" or "differs").ToList();
        var tensors = inv?["tensors"]?.AsArray().OfType<JsonObject>().Select(t => t["key"]!.GetValue<string>()).ToList() ?? [];
        bool loads = good.Count > 0;
        string Best() => string.Join(", ", good.Select(r => r.Reader).Distinct());
        // The first failing reader as a sentence of its own; for a kind with one loader that matters, that loader's.
        string BadOf(IEnumerable<ReaderResult> rs) => rs.FirstOrDefault() is { } b ? $". {b.Reader} {(b.Status == "differs" ? "reads other bytes" : "fails")}: {Trim(b.Message, 160)}" : "";
        string FirstBad() => BadOf(bad);
        var cuda = inv?["storage"]?.AsArray().OfType<JsonObject>().Select(s => s["location"]?.GetValue<string>() ?? "cpu").Where(l => l != "cpu").Distinct().ToList() ?? [];
        var gpu = cuda.Count > 0 ? $" (saved from {string.Join(", ", cuda)}: .NET reads it onto the CPU; PyTorch without a GPU needs torch.load(path, map_location='cpu'))" : "";
        var top = inv?["top_level"]?["keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToList() ?? [];

        switch (f.Format)
        {
            case "missing" or "unreadable":
                return f.Verdict;
            case "empty":
                return new(false, "✗ an empty file (0 bytes): there is nothing in it to load",
                    "the save or the download was cut off before it wrote anything: save or download it again") { Outcome = CheckOutcome.NotAModel };
            case "zip_damaged":
                return Damaged(f);
            case "unknown" or "zip_other":
                return new(false, $"✗ not a PyTorch or TorchSharp file (format: {(f.Format == "zip_other" ? "a zip without torch.save's data.pkl" : "none recognized")})",
                    "save it with torch.save(model.state_dict(), path), safetensors, or TorchSharp's Module.save") { Outcome = CheckOutcome.NotAModel };
            case "torchsharp_optimizer":
            {
                var own = dotnet.FirstOrDefault(r => r.Reader.Contains("optimizer.load_state_dict", StringComparison.Ordinal));
                // PyTorch has no reader of this format to compare with: the loader reading the whole file is the answer.
                var ok = own?.Status is "read" or "identical";
                return new(false,
                    ok ? $"⚠ a TorchSharp optimizer state (optimizer.save_state_dict), not model weights: {own!.Reader} loads it ({own.Message})"
                       : "✗ a TorchSharp optimizer state (optimizer.save_state_dict), not model weights" + (own is null ? "" : BadOf([own])),
                    "load it with optimizer.load_state_dict(path) into the same optimizer class over the same parameters; give check the model's Module.save file for the weights")
                    { Outcome = ok || own is null ? CheckOutcome.NotAModel : CheckOutcome.DoesNotLoad };
            }
            case "torchsharp_tensor":
                return new(false, loads ? "⚠ a single tensor saved with Tensor.Save, not model weights: TorchSharp reads it with Tensor.Load" : "✗ a single tensor saved with Tensor.Save that TorchSharp cannot read back" + FirstBad(),
                    "read it with torch.Tensor.Load(path); it is not a state dict for Module.load")
                    { Outcome = loads ? CheckOutcome.NotAModel : CheckOutcome.DoesNotLoad };
            case "torch_legacy":
            {
                // TorchCheckpoints reads the legacy format (as torch.load does); PyBridge reads only the zip format.
                var codecReads = good.Any(r => r.Reader.StartsWith("TorchCheckpoints", StringComparison.Ordinal));
                return new(loads, loads ? $"✓ legacy torch.save format (torch < 1.6), read by {Best()}" + FirstBad() : "✗ legacy torch.save format (torch < 1.6): no TorchSharp reader takes it" + FirstBad(),
                    codecReads
                        ? "TorchCheckpoints reads it: StateDict.Load(path), or model.load_pytorch(path) (the TorchCheckpoints package); for PyBridge's load_py, re-save with torch >= 1.6: torch.save(torch.load(path), new_path)"
                        : "re-save with torch >= 1.6: torch.save(torch.load(path), new_path)");
            }
            case "torchscript":
            {
                var jit = dotnet.Where(r => r.Reader.Contains("jit.load", StringComparison.Ordinal)).ToList();
                var jitOk = jit.Where(r => r.Identical).ToList();
                var methods = inv?["methods"]?.AsArray().Select(m => m!.GetValue<string>()).ToList() ?? [];
                var what = (inv?["tensors"]?.AsArray().Count ?? 0) == 0 ? "no parameters or buffers" : $"{inv!["tensors"]!.AsArray().Count} tensors";
                return new(jitOk.Count > 0,
                    jitOk.Count > 0 ? $"✓ TorchScript ({what}{(methods.Count > 0 ? "; methods " + string.Join(", ", methods) : "")}): loads in TorchSharp with {string.Join(", ", jitOk.Select(r => r.Reader).Distinct())} (not load_py)"
                                    : "✗ TorchScript that TorchSharp's torch.jit.load cannot read" + BadOf(jit.Where(r => !r.Identical)),
                    "TorchScript: use torch.jit.load (TorchSharp: torch.jit.load(path)), not load_py or the codec");
            }
            case "hf_sharded" or "hf_folder":
                return Folder(f, loads, Best, FirstBad);
        }

        // PyTorch's optimizer.state_dict() saved alone: PyBridge's optimizer.load_py and TorchCheckpoints' optimizer.load_pytorch
        // read it, into an optimizer over the model's parameters.
        if (top.Count == 2 && top.Contains("state") && top.Contains("param_groups"))
        {
            var own = dotnet.Where(r => r.Reader.Contains(OptimizerFiles.ReaderMark, StringComparison.Ordinal)).ToList();
            var loading = own.Where(r => r.Identical).ToList();
            var ok = loading.Count > 0;
            return new(false,
                ok ? $"⚠ a PyTorch optimizer state dict (state, param_groups), not model weights: {string.Join(" and ", loading.Select(r => r.Reader))} load{(loading.Count == 1 ? "s" : "")} it{gpu}"
                     + (loading.Count < own.Count ? BadOf(own.Where(r => !r.Identical)) : "")
                   : "✗ a PyTorch optimizer state dict (state, param_groups), not model weights" + (own.Count == 0 ? "; no optimizer reader was tried" : BadOf(own)),
                "load it into the optimizer (the same class over the same parameters, in the same order): TorchCheckpoints' optimizer.load_pytorch(path), or TorchSharp.PyBridge's optimizer.load_py(path); the weights are a separate torch.save(model.state_dict()) file")
                { Outcome = ok ? CheckOutcome.NotAModel : CheckOutcome.DoesNotLoad };
        }

        var blocked = inv?["globals"]?.AsArray().OfType<JsonObject>()
            .Where(g => !(g["allowed"]?.GetValue<bool>() ?? false) && !(g["known_safe"]?.GetValue<bool>() ?? false))
            .Select(g => g["name"]!.GetValue<string>()).ToList() ?? [];
        if (blocked.Count > 0)
        {
            var classes = blocked.Where(b => b.Contains(".nn.modules.") || b.Contains("Model") || char.IsUpper(b.Split('.')[^1][0])).ToList();
            return new(false,
                classes.Count > 0
                    ? $"✗ a pickled whole model (torch.save(model)): it needs the Python classes {string.Join(", ", classes.Take(3))}{(classes.Count > 3 ? ", …" : "")}, which no .NET reader can rebuild"
                    : $"✗ the pickle asks for {string.Join(", ", blocked.Take(3))}, outside the allowlist; no .NET reader runs it",
                classes.Count > 0 ? "re-save with torch.save(model.state_dict(), path) in Python" : "re-save the tensors only: torch.save(state_dict, path), or safetensors");
        }

        var (prefix, source) = Prefixes.FirstOrDefault(p => tensors.Count > 0 && tensors.All(k => k.StartsWith(p.Prefix, StringComparison.Ordinal)));
        if (prefix is not null)
            return new(false,
                $"⚠ every key starts with `{prefix}` ({source}): a model built in TorchSharp has no such prefix, so a strict load fails",
                $"strip the `{prefix}` prefix: torch.save({{k.removeprefix('{prefix}'): v for k, v in sd.items()}}, path), or save model.{prefix}state_dict()");

        bool nested = tensors.Any(k => k.Contains('/'));
        if (nested)
        {
            var model = ModelEntry(inv) ?? "model_state_dict";
            var codec = good.Any(r => r.Reader.StartsWith("TorchCheckpoints", StringComparison.Ordinal));
            return new(codec,
                codec ? $"✓ a training checkpoint ({string.Join(", ", top.Take(6))}){gpu}: TorchSharp reads it whole with TorchCheckpoint.Load; PyBridge's load_py takes only a bare state dict"
                      : $"✗ a training checkpoint ({string.Join(", ", top.Take(6))}){gpu} that no TorchSharp reader reads" + FirstBad(),
                $"load its '{model}' entry: model.load_state_dict(TorchCheckpoint.LoadDict(path).Dict(\"{model}\")), or re-save torch.save(ckpt['{model}'], path) for load_py");
        }

        var deflated = inv?["deflated_count"]?.GetValue<int>() ?? 0;
        var mmapWrong = f.Readers.Any(r => r.Reader.Contains("mmap", StringComparison.OrdinalIgnoreCase) && r.Status is "differs" or "failed");
        if (deflated > 0 && mmapWrong)
            return new(loads, $"⚠ `mmap=True` reads this file wrong: {deflated} entries are deflated (torch.save never compresses)" + (loads ? $"; {Best()} read{(good.Select(r => r.Reader).Distinct().Count() == 1 ? "s" : "")} it right" : FirstBad()),
                "re-save with torch.save (stored entries), or load without mmap");

        var where = gpu;
        if (!loads)
            return new(false, $"✗ no TorchSharp reader reads this {f.Format} file intact{where}" + FirstBad(),
                f.Format == "safetensors" ? "re-save with safetensors.torch.save_file(model.state_dict(), path) from contiguous tensors"
                    : "re-save with torch.save(model.state_dict(), path) (zip format, torch >= 1.6)");
        if (bad.Count == 0)
            return new(true, $"✓ loads in .NET{where}: {Best()} read every tensor with {(f.ReferenceRuntime?.Contains("no PyTorch", StringComparison.Ordinal) == true ? "the codec's bytes (--dotnet: no PyTorch was asked)" : "PyTorch's bytes")}",
                cuda.Count > 0 ? "nothing to do in .NET; PyTorch without a GPU needs torch.load(path, map_location='cpu')" : "nothing to do");
        // PyBridge fails where this project's codec reads the file right: the remedy names the call that does.
        var pyBridgeBad = bad.Any(r => r.Reader.StartsWith("PyBridge", StringComparison.Ordinal));
        var codecGood = good.Any(r => r.Reader.StartsWith("TorchCheckpoints", StringComparison.Ordinal));
        return new(true, $"✓ loads in .NET with {Best()}{where}" + FirstBad(),
            pyBridgeBad && codecGood && f.Format == "torch_zip"
                ? "TorchCheckpoints reads it: StateDict.Load(path), or model.load_pytorch(path) (the TorchCheckpoints package), where PyBridge's reader does not"
                : $"use {good[0].Reader}");
    }

    /// <summary>A zip that does not open: a torch.save file (or TorchScript) cut short or corrupted; where it ends, and torch's own error.</summary>
    private static Verdict Damaged(CheckedFile f)
    {
        var d = f.Inventory?["damaged"] as JsonObject;
        var last = d?["last_entry"]?.GetValue<string>();
        var begun = d?["entries_begun"]?.GetValue<int>() ?? 0;
        var names = d?["entry_names"]?.AsArray().Select(n => n!.GetValue<string>()).ToList() ?? [];
        var kind = names.Any(n => n.Contains("/code/", StringComparison.Ordinal) || n.EndsWith("constants.pkl", StringComparison.Ordinal)) ? "TorchScript archive (torch.jit.save)"
            : names.Any(n => n.EndsWith("data.pkl", StringComparison.Ordinal) || n.Contains("/data/", StringComparison.Ordinal)) ? "torch.save file"
            : "zip file";
        var bytes = d?["bytes"]?.GetValue<long>() ?? f.Inventory?["bytes"]?.GetValue<long>() ?? 0;
        // Without Python's scan (--dotnet), the codec's own words say what is wrong.
        var codec = f.Readers.FirstOrDefault(r => r.Status == "failed" && r.Reader.StartsWith("TorchCheckpoints", StringComparison.Ordinal));
        var cut = d is null
            ? $"{bytes:N0} bytes that no reader opens{(codec is null ? "" : $". {codec.Reader} says: {Trim(codec.Message, 200)}")}"
            : d["end_of_central_directory"]?.GetValue<bool>() == false
            ? $"it ends at byte {bytes:N0} without the zip's closing directory, so it was cut short{(last is null ? "" : $"; the last entry begun is '{last}' at byte {d["last_entry_offset"]!.GetValue<long>():N0} ({begun} entries begun)")}"
            : $"its {bytes:N0} bytes end with a zip directory, yet the entries it lists do not open";
        var torchError = d?["torch_error"]?.GetValue<string>();
        return new(false, $"✗ a damaged {kind}: {cut}{(torchError is null ? "" : $". torch.load says: {Trim(torchError, 200)}")}",
            "the file is incomplete or corrupted (an interrupted save, copy or download): save or copy it again; no reader can restore the missing bytes");
    }

    private static Verdict Folder(CheckedFile f, bool loads, Func<string> best, Func<string> firstBad)
    {
        var problems = f.Inventory?["index_problems"]?.AsArray().Select(p => p!.GetValue<string>()).ToList() ?? [];
        var shardsBad = f.Parts.Where(p => !p.Verdict.LoadsInDotNet).ToList();
        var kind = f.Format == "hf_sharded" ? $"a Hugging Face sharded checkpoint ({f.Parts.Count} shards, {f.Inventory?["index"]})" : "a Hugging Face checkpoint folder";
        if (problems.Count > 0)
            return new(false, $"✗ {kind} whose index disagrees with its shards: {problems[0]}", "re-save with save_pretrained, or fix the index's weight_map");
        if (loads)
            return new(true, $"✓ {kind}: loads in .NET with {best()}", "model.load_checkpoint(folder) (TorchSharp.PyBridge) reads the index and every shard");
        return new(false, $"✗ {kind} that no TorchSharp reader reads intact" + (firstBad() is { Length: > 0 } b ? b : shardsBad.Count > 0 ? $". Shard {Path.GetFileName(shardsBad[0].Path)}: {shardsBad[0].Verdict.Line}" : ""),
            shardsBad.Count > 0 ? shardsBad[0].Verdict.Remedy : "load each shard with load_safetensors / load_py (strict: false) and check every key was loaded");
    }

    internal static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
