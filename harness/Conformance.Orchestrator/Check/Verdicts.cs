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

    private static readonly string[] Prefixes = ["module.", "_orig_mod."];

    private static bool IsDotNet(ReaderResult r) => r.Runtime.StartsWith("torchsharp", StringComparison.Ordinal);

    /// <summary>The verdict, with the device rules' warnings whose trait the file shows (the same rules as the report's device view).</summary>
    public static Verdict For(CheckedFile f) =>
        Decide(f) with { DeviceWarnings = Reports.DeviceRules.Detect(f.Format, f.Inventory).Select(r => r.Warning).ToList() };

    private static Verdict Decide(CheckedFile f)
    {
        var inv = f.Inventory;
        var dotnet = f.Readers.Where(IsDotNet).ToList();
        var good = dotnet.Where(r => r.Identical).ToList();
        var bad = dotnet.Where(r => r.Status is "failed" or "differs").ToList();
        var tensors = inv?["tensors"]?.AsArray().OfType<JsonObject>().Select(t => t["key"]!.GetValue<string>()).ToList() ?? [];
        bool loads = good.Count > 0;
        string Best() => string.Join(", ", good.Select(r => r.Reader).Distinct());
        string FirstBad() => bad.Count == 0 ? "" : $" {bad[0].Reader} {(bad[0].Status == "differs" ? "reads other bytes" : "fails")}: {Trim(bad[0].Message, 160)}";

        switch (f.Format)
        {
            case "missing":
                return f.Verdict;
            case "unknown" or "zip_other" or "zip_damaged":
                return new(false, $"✗ not a PyTorch or TorchSharp file (format: {f.Format})",
                    "save it with torch.save(model.state_dict(), path), safetensors, or TorchSharp's Module.save");
            case "torchsharp_optimizer":
                return new(false, "✗ a TorchSharp optimizer state (optimizer.save_state_dict), not model weights",
                    "load it with optimizer.load_state_dict in TorchSharp; give check the model's Module.save file");
            case "torchsharp_tensor":
                return new(loads, loads ? "✓ a single tensor saved with Tensor.Save: TorchSharp reads it with Tensor.Load" : "✗ a single tensor saved with Tensor.Save that TorchSharp cannot read back" + FirstBad(),
                    "read it with torch.Tensor.Load(path); it is not a state dict for Module.load");
            case "torch_legacy":
                return new(loads, loads ? $"✓ legacy torch.save format (torch < 1.6), read by {Best()}" : "✗ legacy torch.save format (torch < 1.6): no TorchSharp reader takes it" + FirstBad(),
                    "re-save with torch >= 1.6: torch.save(torch.load(path), new_path)");
            case "torchscript":
                return new(loads,
                    loads ? $"✓ TorchScript: loads in TorchSharp with {Best()} (not load_py)" : "✗ TorchScript that TorchSharp's torch.jit.load cannot read" + FirstBad(),
                    "TorchScript: use torch.jit.load (TorchSharp: torch.jit.load(path)), not load_py or the codec");
            case "hf_sharded" or "hf_folder":
                return Folder(f, loads, Best, FirstBad);
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

        var prefix = Prefixes.FirstOrDefault(p => tensors.Count > 0 && tensors.All(k => k.StartsWith(p, StringComparison.Ordinal)));
        if (prefix is not null)
            return new(false,
                $"⚠ every key starts with `{prefix}` ({(prefix == "module." ? "DataParallel/DistributedDataParallel" : "torch.compile")}): a model built in TorchSharp has no such prefix, so a strict load fails",
                $"strip the `{prefix}` prefix: torch.save({{k.removeprefix('{prefix}'): v for k, v in sd.items()}}, path){(prefix == "module." ? ", or save model.module.state_dict()" : ", or save the model's _orig_mod.state_dict()")}");

        bool nested = tensors.Any(k => k.Contains('/'));
        if (nested)
        {
            var top = inv?["top_level"]?["keys"]?.AsArray().Select(k => k!.GetValue<string>()).ToList() ?? [];
            var model = top.FirstOrDefault(k => k.Contains("model", StringComparison.OrdinalIgnoreCase) && k.Contains("state", StringComparison.OrdinalIgnoreCase))
                        ?? top.FirstOrDefault(k => k.Contains("model", StringComparison.OrdinalIgnoreCase)) ?? "model_state_dict";
            var codec = good.Any(r => r.Reader.StartsWith("TorchCheckpoints", StringComparison.Ordinal));
            return new(codec,
                codec ? $"✓ a training checkpoint ({string.Join(", ", top.Take(6))}): TorchSharp reads it whole with TorchCheckpoint.Load; PyBridge's load_py takes only a bare state dict"
                      : $"✗ a training checkpoint ({string.Join(", ", top.Take(6))}) that no TorchSharp reader reads" + FirstBad(),
                $"load its '{model}' entry: model.load_state_dict((PyDict)((PyDict)TorchCheckpoint.Load(path))[\"{model}\"]), or re-save torch.save(ckpt['{model}'], path) for load_py");
        }

        var deflated = inv?["deflated_count"]?.GetValue<int>() ?? 0;
        var mmapWrong = f.Readers.Any(r => r.Reader.Contains("mmap", StringComparison.OrdinalIgnoreCase) && r.Status is "differs" or "failed");
        if (deflated > 0 && mmapWrong)
            return new(loads, $"⚠ `mmap=True` reads this file wrong: {deflated} entries are deflated (torch.save never compresses)" + (loads ? $"; {Best()} read{(good.Select(r => r.Reader).Distinct().Count() == 1 ? "s" : "")} it right" : FirstBad()),
                "re-save with torch.save (stored entries), or load without mmap");

        var cuda = inv?["storage"]?.AsArray().OfType<JsonObject>().Select(s => s["location"]?.GetValue<string>() ?? "cpu").Where(l => l != "cpu").Distinct().ToList() ?? [];
        var where = cuda.Count > 0 ? $" (saved from {string.Join(", ", cuda)}; read onto the CPU)" : "";
        if (!loads)
            return new(false, $"✗ no TorchSharp reader reads this {f.Format} file intact{where}." + FirstBad(),
                f.Format == "safetensors" ? "re-save with safetensors.torch.save_file(model.state_dict(), path) from contiguous tensors"
                    : "re-save with torch.save(model.state_dict(), path) (zip format, torch >= 1.6)");
        return bad.Count == 0
            ? new(true, $"✓ loads in .NET{where}: {Best()} read every tensor with PyTorch's bytes",
                cuda.Count > 0 ? "nothing to do in .NET; PyTorch without a GPU needs torch.load(path, map_location='cpu')" : "nothing to do")
            : new(true, $"✓ loads in .NET with {Best()}{where};" + FirstBad(), $"use {good[0].Reader}");
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
        return new(false, $"✗ {kind} that no TorchSharp reader reads intact." + (firstBad() is { Length: > 0 } b ? b : shardsBad.Count > 0 ? $" Shard {Path.GetFileName(shardsBad[0].Path)}: {shardsBad[0].Verdict.Line}" : ""),
            shardsBad.Count > 0 ? shardsBad[0].Verdict.Remedy : "load each shard with load_safetensors / load_py (strict: false) and check every key was loaded");
    }

    internal static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
