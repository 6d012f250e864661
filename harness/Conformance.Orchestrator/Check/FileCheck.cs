using System.Text.Json.Nodes;
using Conformance.Files;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;

namespace Conformance.Orchestrator.Check;

/// <summary>
/// <c>conformance check PATH…</c>: asks every available runtime's worker to read a user's file with
/// every reader it has, and compares what each read with the newest PyTorch's reading. The file is
/// staged under the repository's artifacts folder when it lies outside it, so the rootfs runtimes see
/// it. No reader executes a pickle global outside the allowlist (see python/torchconformance/worker/check.py).
/// </summary>
public sealed class FileCheck(Suite suite, RunnerOptions options, string? modelTwin = null, string? twinInput = null, bool dotnetOnly = false)
{
    public const string Op = "check";

    private static readonly string[] HfIndexes = ["model.safetensors.index.json", "pytorch_model.bin.index.json"];
    private static readonly string[] HfSingles = ["model.safetensors", "pytorch_model.bin"];

    /// <summary>
    /// Each path as the items it holds: a Hugging Face folder is one item; another folder, each of its files.
    /// Each item keeps the path as the user gave it (a folder's files under the folder as given), for every message.
    /// </summary>
    public static IReadOnlyList<CheckItem> Expand(IEnumerable<string> paths)
    {
        var items = new List<CheckItem>();
        foreach (var raw in paths)
        {
            var path = System.IO.Path.GetFullPath(raw);
            if (File.Exists(path)) items.Add(new(path, raw));
            else if (Directory.Exists(path))
            {
                if (IsHuggingFace(path)) items.Add(new(path, raw));
                else
                {
                    var inside = Directory.GetFiles(path).Order(StringComparer.Ordinal)
                        .Concat(Directory.GetDirectories(path).Where(IsHuggingFace).Order(StringComparer.Ordinal));
                    items.AddRange(inside.Select(p => new CheckItem(p, System.IO.Path.Join(raw, System.IO.Path.GetFileName(p)))));
                }
            }
            else throw new FileNotFoundException($"{raw}: no such file or folder", raw);
        }
        return items;
    }

    private static bool IsHuggingFace(string dir) => HfIndexes.Concat(HfSingles).Any(n => File.Exists(System.IO.Path.Combine(dir, n)));

    public CheckRun Run(IReadOnlyList<string> paths, Action<string>? progress = null) => Run(Expand(paths), progress);

    public CheckRun Run(IReadOnlyList<CheckItem> items, Action<string>? progress = null)
    {
        var started = DateTimeOffset.Now;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var pool = new WorkerPool(options.StartTimeout, options.WorkerEnvironment);
        var unreadable = items.Select(Unreadable).ToList();
        // Every runtime the question needs starts at once: the start (an interpreter importing torch, .NET loading
        // libtorch) is most of a small file's time, and one runtime's start does not wait for another's. None
        // starts when no file can be read.
        if (unreadable.Any(u => u is null))
            Parallel.ForEach(PyTorchs.Concat(TorchSharps), new ParallelOptions { MaxDegreeOfParallelism = 8 },
                rt => pool.Send(rt, Conformance.Protocol.Ops.Hello, null, options.StartTimeout));
        var files = new List<CheckedFile>();
        foreach (var (item, i) in items.Select((p, i) => (p, i)))
        {
            progress?.Invoke($"[{i + 1}/{items.Count}] {item.Display}");
            if (unreadable[i] is { } cannot)
            {
                files.Add(cannot);
                continue;
            }
            string staged;
            try { staged = Stage(item.Full, i); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                files.Add(IoFailure(item, $"could not copy it under {options.ArtifactsDir} for the runtimes to read: {e.Message}"));
                continue;
            }
            var file = Directory.Exists(staged) ? CheckFolder(pool, item.Display, staged) : CheckFile(pool, item.Display, staged);
            files.Add(file);
        }
        return new CheckRun(files, [.. suite.Runtimes.Where(r => r.Library is null)], started, clock.Elapsed);
    }

    /// <summary>A file this process cannot open (permissions, an I/O error): its own verdict, exit 4, and no worker is asked.</summary>
    private static CheckedFile? Unreadable(CheckItem item)
    {
        if (Directory.Exists(item.Full)) return null;
        try
        {
            using var stream = new FileStream(item.Full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            stream.ReadByte();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return IoFailure(item, e is UnauthorizedAccessException ? "permission denied" : e.Message);
        }
    }

    private static CheckedFile IoFailure(CheckItem item, string why) =>
        new(item.Display, "unreadable", null, null, [], [],
            new Verdict(false, $"✗ cannot read {item.Display}: {why}", "check that the file exists and that you may read it (ls -l; chmod u+r), then run check again") { Outcome = CheckOutcome.IoError }, []);

    /// <summary>Every string in a JSON tree with <paramref name="from"/> (the staged copy) replaced by <paramref name="to"/> (the path as given).</summary>
    private static JsonNode? Renamed(JsonNode? node, string from, string to)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(kv => kv.Key).ToList())
                    if (Renamed(o[key], from, to) is var n && !ReferenceEquals(n, o[key])) o[key] = n;
                return o;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++)
                    if (Renamed(a[i], from, to) is var n && !ReferenceEquals(n, a[i])) a[i] = n;
                return a;
            case JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String && v.GetValue<string>().Contains(from, StringComparison.Ordinal):
                return JsonValue.Create(v.GetValue<string>().Replace(from, to, StringComparison.Ordinal));
            default:
                return node;
        }
    }

    // --dotnet: no PyTorch at all; the TorchSharp worker reads the inventory with the codec.
    private IEnumerable<Runtime> PyTorchs => suite.Runtimes.Where(r => !dotnetOnly && r.Available && r.Kind == RuntimeKinds.PyTorch && !Runtime.IsAccelerator(r.Device))
        .OrderByDescending(r => Runtime.ParseVersion(r.Version));

    // Each TorchSharp version once: its readers name their library (PyBridge load_py, TorchCheckpoints TorchCheckpoint.Load), so the matrix's library runtimes add nothing here.
    private IEnumerable<Runtime> TorchSharps => suite.Runtimes.Where(r => r.Available && r.Kind == RuntimeKinds.TorchSharp && r.Library is null && !Runtime.IsAccelerator(r.Device));

    /// <summary>The path as the workers see it: itself inside the repository, else a copy under artifacts/check/.</summary>
    private string Stage(string path, int index)
    {
        var root = suite.Repo.Root.TrimEnd('/') + "/";
        if (path.StartsWith(root, StringComparison.Ordinal)) return path;
        var dir = System.IO.Path.Combine(options.ArtifactsDir, $"{index:D3}");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        var target = System.IO.Path.Combine(dir, System.IO.Path.GetFileName(path.TrimEnd('/')));
        if (File.Exists(path)) File.Copy(path, target);
        else
        {
            Directory.CreateDirectory(target);
            foreach (var f in Directory.GetFiles(path)) File.Copy(f, System.IO.Path.Combine(target, System.IO.Path.GetFileName(f)));
        }
        return target;
    }

    private JsonObject? Ask(WorkerPool pool, Runtime runtime, JsonObject args, out string? error)
    {
        var reply = pool.Send(runtime, Op, args, options.RequestTimeout);
        error = null;
        if (reply.Result is JsonObject result) return result;
        error = reply switch
        {
            Reply.Answered a => $"{a.Response.Error?.Kind}: {a.Response.Error?.Message}",
            Reply.Failed f => $"{f.Kind}: {f.Message}",
            _ => "no answer",
        };
        return null;
    }

    private CheckedFile CheckFile(WorkerPool pool, string original, string staged)
    {
        JsonObject? inventory = null;
        string? reference = null;
        string format = "unknown";
        var readers = new List<(string Runtime, JsonObject Reader)>();
        var failures = new List<ReaderResult>();
        // Every PyTorch reads at once; the newest also makes the inventory (another, if it cannot answer).
        var pytorchs = PyTorchs.ToList();
        var answers = new (JsonObject? Answer, string? Error)[pytorchs.Count];
        Parallel.For(0, pytorchs.Count, i =>
        {
            var answer = Ask(pool, pytorchs[i], new JsonObject { ["path"] = staged, ["inventory"] = i == 0 }, out var error);
            answers[i] = (answer, error);
        });
        for (int i = 0; i < pytorchs.Count; i++)
        {
            var rt = pytorchs[i];
            var (answer, error) = answers[i];
            if (answer is not null && inventory is null && answer["inventory"] is null && i > 0)
                answer = Ask(pool, rt, new JsonObject { ["path"] = staged, ["inventory"] = true }, out error);
            if (answer is null)
            {
                failures.Add(new ReaderResult(rt.Id, "(worker)", "failed", error ?? "", 0));
                continue;
            }
            if (inventory is null && answer["inventory"] is JsonObject inv)
            {
                inventory = (JsonObject)inv.DeepClone();
                reference = rt.Id;
                format = answer["format"]?.GetValue<string>() ?? format;
            }
            foreach (var r in answer["readers"]?.AsArray() ?? []) readers.Add((rt.Id, (JsonObject)r!));
        }
        var keys = MirrorKeys(inventory);
        foreach (var rt in TorchSharps)
        {
            var args = new JsonObject { ["path"] = staged, ["format"] = format, ["keys"] = keys.DeepClone() };
            if (inventory is null && dotnetOnly) args["inventory"] = true;
            if (OptimizerFiles.ClassOf(inventory) is { } optimizer) args["optimizer_class"] = optimizer;
            var answer = Ask(pool, rt, args, out var error);
            if (answer is null) failures.Add(new ReaderResult(rt.Id, "(worker)", "failed", error ?? "", 0));
            else
            {
                if (inventory is null && answer["inventory"] is JsonObject inv)
                {
                    inventory = (JsonObject)inv.DeepClone();
                    reference = $"{rt.Id} (TorchCheckpoints, no PyTorch)";
                    format = answer["format"]?.GetValue<string>() ?? format;
                    keys = MirrorKeys(inventory);
                }
                foreach (var r in answer["readers"]?.AsArray() ?? []) readers.Add((rt.Id, (JsonObject)r!));
            }
        }
        // --dotnet learns that the file is a PyTorch optimizer state dict only from the worker's own inventory: then
        // PyBridge's optimizer.load_py and TorchCheckpoints' optimizer.load_pytorch are asked for on their own.
        if (dotnetOnly && OptimizerFiles.ClassOf(inventory) is { } optimizerClass && TorchSharps.FirstOrDefault() is { } ts
            && !readers.Any(r => r.Reader["reader"]?.GetValue<string>()?.Contains(OptimizerFiles.ReaderMark, StringComparison.Ordinal) == true))
        {
            var again = Ask(pool, ts, new JsonObject { ["path"] = staged, ["format"] = format, ["keys"] = MirrorKeys(inventory), ["optimizer_class"] = optimizerClass }, out _);
            foreach (var r in (again?["readers"]?.AsArray() ?? []).OfType<JsonObject>().Where(r => r["reader"]?.GetValue<string>()?.Contains(OptimizerFiles.ReaderMark, StringComparison.Ordinal) == true))
                readers.Add((ts.Id, (JsonObject)r.DeepClone()));
        }
        var judged = Judge(inventory, readers).Concat(failures).ToList();
        var twin = modelTwin is null ? [] : Twin(pool, staged, format, inventory);
        // Every message names the file as the user gave it, never the staged copy the workers read.
        if (staged != original)
        {
            inventory = Renamed(inventory, staged, original) as JsonObject;
            judged = judged.Select(r => r with { Message = r.Message.Replace(staged, original, StringComparison.Ordinal) }).ToList();
            twin = twin.Select(t => t with { Message = t.Message.Replace(staged, original, StringComparison.Ordinal) }).ToList();
        }
        var file = new CheckedFile(original, format, inventory, reference, judged, twin, Verdicts.Placeholder, []);
        return file with { Verdict = Verdicts.For(file) };
    }

    private CheckedFile CheckFolder(WorkerPool pool, string original, string staged)
    {
        var index = HfIndexes.Select(n => System.IO.Path.Combine(staged, n)).FirstOrDefault(File.Exists);
        var shardNames = new List<string>();
        var weightMap = new JsonObject();
        string? indexError = null;
        if (index is not null)
        {
            try
            {
                var json = JsonNode.Parse(File.ReadAllText(index)) as JsonObject;
                weightMap = json?["weight_map"] as JsonObject ?? throw new FormatException("it has no \"weight_map\" object");
                shardNames = weightMap.Select(kv => kv.Value!.GetValue<string>()).Distinct().ToList();
            }
            catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException)
            {
                indexError = $"{System.IO.Path.GetFileName(index)}: {e.Message}";
            }
        }
        else shardNames = HfSingles.Where(n => File.Exists(System.IO.Path.Combine(staged, n))).Take(1).ToList();

        var parts = shardNames.Select(n => System.IO.Path.Combine(staged, n))
            .Select(p => File.Exists(p) ? CheckFile(pool, System.IO.Path.Combine(original, System.IO.Path.GetFileName(p)), p)
                : new CheckedFile(System.IO.Path.Combine(original, System.IO.Path.GetFileName(p)), "missing", null, null, [], [],
                    new Verdict(false, "✗ a shard the index names is missing", "download every shard the index lists"), []))
            .ToList();

        // The folder's keys, in the index's order (or the single file's), with the dtype and shape PyTorch read.
        var described = parts.SelectMany(p => p.Inventory?["tensors"]?.AsArray() ?? []).OfType<JsonObject>()
            .GroupBy(t => t["key"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.First());
        var order = index is not null ? weightMap.Select(kv => kv.Key).ToList() : described.Keys.ToList();
        var tensors = new JsonArray(order.Where(described.ContainsKey).Select(k => described[k].DeepClone()).ToArray());
        var problems = new List<string>();
        if (indexError is not null) problems.Add(indexError);
        foreach (var k in order.Where(k => !described.ContainsKey(k)).Take(5)) problems.Add($"the index maps '{k}' to {weightMap[k]}, which does not hold it");
        var unindexed = index is null ? [] : described.Keys.Except(order).ToList();
        foreach (var k in unindexed.Take(5)) problems.Add($"'{k}' is in a shard but not in the index");
        var inventory = new JsonObject
        {
            ["format"] = index is null ? "hf_folder" : "hf_sharded",
            ["index"] = index is null ? null : System.IO.Path.GetFileName(index),
            ["shards"] = new JsonArray(shardNames.Select(s => (JsonNode)s).ToArray()),
            ["tensors"] = tensors,
            ["index_problems"] = new JsonArray(problems.Select(p => (JsonNode)p).ToArray()),
        };
        var readers = new List<(string, JsonObject)>();
        var failures = new List<ReaderResult>();
        foreach (var rt in TorchSharps)
        {
            var answer = Ask(pool, rt, new JsonObject { ["path"] = staged, ["format"] = "hf_folder", ["keys"] = MirrorKeys(inventory) }, out var error);
            if (answer is null) failures.Add(new ReaderResult(rt.Id, "(worker)", "failed", error ?? "", 0));
            else foreach (var r in answer["readers"]?.AsArray() ?? []) readers.Add((rt.Id, (JsonObject)r!));
        }
        var judged = Judge(inventory, readers).Concat(failures)
            .Select(r => staged == original ? r : r with { Message = r.Message.Replace(staged, original, StringComparison.Ordinal) }).ToList();
        var folder = new CheckedFile(original, (string)inventory["format"]!, inventory, parts.FirstOrDefault()?.ReferenceRuntime, judged, [], Verdicts.Placeholder, parts);
        return folder with { Verdict = Verdicts.For(folder) };
    }

    /// <summary>The keys a TorchSharp module needs to load a state dict strictly; none for a nested (checkpoint) file.</summary>
    private static JsonArray MirrorKeys(JsonObject? inventory)
    {
        var tensors = inventory?["tensors"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
        if (tensors.Any(t => t["key"]!.GetValue<string>().Contains('/'))) return [];
        return new JsonArray(tensors.Select(t => (JsonNode)new JsonObject { ["key"] = t["key"]!.DeepClone(), ["dtype"] = t["dtype"]!.DeepClone(), ["shape"] = t["shape"]!.DeepClone() }).ToArray());
    }

    private static List<ObservedTensor> Observed(IEnumerable<JsonObject> tensors) =>
        tensors.Select(t => new ObservedTensor(t["key"]!.GetValue<string>(), t["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToList(),
            t["dtype"]!.GetValue<string>(), t["sha256"]!.GetValue<string>())).ToList();

    /// <summary>Each reader's tensors against the inventory's: identical, or what differs first.</summary>
    public static IEnumerable<ReaderResult> Judge(JsonObject? inventory, IEnumerable<(string Runtime, JsonObject Reader)> readers)
    {
        var expected = (inventory?["tensors"]?.AsArray() ?? []).OfType<JsonObject>()
            .GroupBy(t => t["key"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.First());
        foreach (var (runtime, r) in readers)
        {
            var name = r["reader"]?.GetValue<string>() ?? "?";
            var status = r["status"]?.GetValue<string>() ?? "failed";
            var message = r["message"]?.GetValue<string>() ?? "";
            if (status != "read")
            {
                yield return new ReaderResult(runtime, name, status, message, 0);
                continue;
            }
            var got = (r["tensors"]?.AsArray() ?? []).OfType<JsonObject>().ToList();
            // What torch.load handed back when it was not a dict (1.13 returns a TorchScript module even with weights_only=True).
            var returned = r["returned"]?.GetValue<string>() is { } type ? $"; returned a {type}, not a dict (torch.load hands TorchScript to torch.jit.load)" : "";
            // A complete reading with no tensors (TorchScript without parameters, a scripted function): a reader that
            // loads it and finds none agrees with it.
            if (inventory is not null && expected.Count == 0 && inventory["inventory_error"] is null && inventory["tensors"] is JsonArray)
            {
                yield return got.Count == 0
                    ? new ReaderResult(runtime, name, "identical", "loaded; it holds no tensors, as PyTorch read" + returned, 0)
                    : new ReaderResult(runtime, name, "differs", $"read {got.Count} tensors where PyTorch read none (first: '{got[0]["key"]}')", got.Count);
                continue;
            }
            if (inventory is null || expected.Count == 0)
            {
                yield return new ReaderResult(runtime, name, "read", $"read {got.Count} tensors (no reference reading to compare with)", got.Count);
                continue;
            }
            // Judgement's own comparer (keys in PyTorch's wording, shapes, dtypes, bytes, order): the matrix's rules for a user's file.
            var diffs = Judgement.Judge.CompareTensors(Observed(expected.Values), Observed(got)).Select(p => p.Message).ToList();
            yield return diffs.Count == 0
                ? new ReaderResult(runtime, name, "identical", $"{got.Count} tensors, bytes identical" + returned, got.Count)
                : new ReaderResult(runtime, name, "differs", $"{diffs.Count} difference(s): {string.Join("; ", diffs.Take(3))}", got.Count);
        }
    }

    /// <summary>The route that writes files of each format check finds (cases.json: a route's <c>file_format</c>): a twin loads a file by it.</summary>
    private static readonly IReadOnlyDictionary<string, string> RouteOfFormat = CatalogueFiles.Entries(CatalogueFiles.Read("cases.json")["routes"])
        .Where(r => r.Value?["file_format"] is not null)
        .ToDictionary(r => r.Value!["file_format"]!.GetValue<string>(), r => r.Key);

    /// <summary>
    /// With --model-twin: the file loaded into the suite's twin on every runtime (a training checkpoint's model entry;
    /// a file saved from CUDA with map_location='cpu' in PyTorch), eval outputs on the case's input or --input's,
    /// against the first PyTorch's. TorchSharp is never the reference: without a PyTorch that loads it, nothing is compared.
    /// </summary>
    private List<TwinResult> Twin(WorkerPool pool, string staged, string format, JsonObject? inventory)
    {
        var results = new List<TwinResult>();
        var spec = Catalogue.Case(modelTwin!);
        var nested = inventory?["tensors"]?.AsArray().Any(t => t!["key"]!.GetValue<string>().Contains('/')) == true;
        var entry = nested ? Verdicts.ModelEntry(inventory) : null;
        if (!RouteOfFormat.TryGetValue(format, out var route) || (nested && (entry is null || format != "torch_zip")))
        {
            results.Add(new TwinResult("-", "not_run", nested
                ? $"a {format} file with nested entries and no model state dict entry (model_state_dict, state_dict, model) to load into a twin"
                : $"a {format} file is not a state dict a twin loads", null));
            return results;
        }
        var cuda = inventory?["storage"]?.AsArray().OfType<JsonObject>().Any(s => (s["location"]?.GetValue<string>() ?? "cpu") != "cpu") == true;
        double[]? reference = null;
        string? referenceRuntime = null;
        foreach (var rt in PyTorchs.Concat(TorchSharps))
        {
            var pytorch = rt.Kind == RuntimeKinds.PyTorch;
            var args = new JsonObject
            {
                ["case"] = spec.Name, ["route"] = route, ["path"] = staged,
                // PyTorch on a CPU reads CUDA storages only with map_location='cpu'; TorchSharp's readers always read onto the CPU.
                ["mode"] = cuda && pytorch ? "map_location_cpu" : "default",
            };
            if (entry is not null) args["entry"] = entry;
            if (twinInput is not null) args["input"] = twinInput;
            var reply = pool.Send(rt, Conformance.Protocol.Ops.Consume, args, options.RequestTimeout);
            if (reply.Result is not JsonObject r)
            {
                var why = reply is Reply.Answered a ? $"{a.Response.Error?.Kind}: {a.Response.Error?.Message}" : reply is Reply.Failed f ? $"{f.Kind}: {f.Message}" : "no answer";
                results.Add(new TwinResult(rt.Id, "failed", why, null));
                continue;
            }
            var values = r["outputs"]?["values"]?.AsArray().Select(v => v!.GetValueKind() == System.Text.Json.JsonValueKind.String ? double.Parse(v.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) : v.GetValue<double>()).ToArray() ?? [];
            var shape = r["outputs"]?["shape"]?.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            var how = $"{(entry is null ? "" : $"its '{entry}' ")}loaded into {spec.Name}{(cuda && pytorch ? " with map_location='cpu'" : "")}";
            if (reference is null)
            {
                if (pytorch)
                {
                    reference = values;
                    referenceRuntime = rt.Id;
                    results.Add(new TwinResult(rt.Id, "reference", $"{how}; its eval outputs are the reference", 0) { Values = values, Shape = shape });
                }
                else results.Add(new TwinResult(rt.Id, "loaded", $"{how}; no PyTorch runtime loaded it, so nothing to compare with", null) { Values = values, Shape = shape });
                continue;
            }
            if (values.Length != reference.Length)
            {
                results.Add(new TwinResult(rt.Id, "differs", $"{values.Length} outputs where {referenceRuntime} has {reference.Length}", null) { Values = values, Shape = shape });
                continue;
            }
            double max = 0;
            bool within = true;
            for (int i = 0; i < values.Length; i++)
            {
                var d = Math.Abs(values[i] - reference[i]);
                max = Math.Max(max, double.IsNaN(d) ? double.PositiveInfinity : d);
                if (!(d <= spec.Tolerance.Atol + spec.Tolerance.Rtol * Math.Abs(reference[i]))) within = false;
            }
            results.Add(new TwinResult(rt.Id, within ? "within" : "differs", $"{how}; eval outputs against {referenceRuntime}: max abs diff {max:g3} ({spec.Tolerance})", max) { Values = values, Shape = shape });
        }
        return results;
    }
}
