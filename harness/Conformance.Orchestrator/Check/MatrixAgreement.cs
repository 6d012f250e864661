using System.Text.Json.Nodes;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Check;

/// <summary>
/// One answer, two places: `check` on a committed fixture must say what the matrix's golden cells for the same
/// file say, reader by reader. A golden cell (producer <c>X@golden</c>) consumes <c>fixtures/X/CASE.ROUTE.EXT</c> with
/// one consumer runtime in one load mode; <see cref="ReaderOf"/> names the check reader that does the same load.
/// The matrix loads into the twin and judges much more (outputs, training); only what both observe is compared:
/// a load_error is a reader that fails, a problem in the tensors (bytes, dtype, keys) a reader that loads, and a pass or
/// any other problem a reader that reads PyTorch's bytes.
/// </summary>
public static class MatrixAgreement
{
    /// <summary>The check reader that loads as the matrix's (consumer kind, route, mode) does, or null where check has none.</summary>
    public static string? ReaderOf(string consumerKind, string route, string mode, string? library = null)
    {
        var pickle = route is Catalogue.Pickle or Catalogue.PickleLegacy or "checkpoint" or "pickled_model";
        if (consumerKind == RuntimeKinds.PyTorch)
            return (pickle, route, mode) switch
            {
                (true, _, "default") => "torch.load (default)",
                (true, _, "weights_only") => "torch.load(weights_only=True)",
                (true, _, "mmap") => "torch.load(mmap=True)",
                (true, _, "map_location_cpu") => "torch.load(map_location='cpu')",
                (_, Catalogue.TorchScriptScript or "torchscript_trace", "default") => "torch.jit.load",
                (_, Catalogue.Safetensors, "default") => "safetensors.torch.load_file",
                (_, Catalogue.TorchSharpNative, "default") => "torchconformance.tsnative.load",
                _ => null,
            };
        // The matrix's TorchCheckpoints runtime (torchsharp-0.107+torchcheckpoints) loads pickles as check's codec reader does.
        if (library == "torchcheckpoints")
            return (route, mode) switch
            {
                (Catalogue.Pickle or Catalogue.PickleLegacy or "checkpoint", "default") => "TorchCheckpoints TorchCheckpoint.Load",
                (Catalogue.Safetensors, "default") => "TorchCheckpoints Safetensors.Load",
                _ => null,
            };
        return (route, mode) switch
        {
            (Catalogue.Pickle or Catalogue.PickleLegacy, "default") => "PyBridge load_py (strict)",
            ("checkpoint", "default") => "TorchCheckpoints TorchCheckpoint.Load",
            (Catalogue.TorchScriptScript or "torchscript_trace", "default") => "TorchSharp torch.jit.load",
            (Catalogue.Safetensors, "default") => "PyBridge load_safetensors (strict)",
            (Catalogue.TorchSharpNative, "default") => "TorchSharp Module.load (strict)",
            ("hf_bin_sharded" or "hf_safetensors" or "hf_safetensors_sharded", "default") => "PyBridge load_checkpoint (strict)",
            _ => null,
        };
    }

    public const string GoldenSuffix = "@golden";

    // Problems the matrix finds in the loaded tensors themselves; any other problem (training, key order, outputs
    // after a mode switch) comes after a load that read the producer's bytes.
    private static readonly HashSet<string> ContentProblems = ["bytes", "dtype", "shape_mismatch", "missing_keys", "unexpected_keys", "prefixed_keys"];

    /// <summary>The committed fixture a golden cell consumes, under <paramref name="fixturesDir"/>; null for a cell that is not golden.</summary>
    public static string? FixtureOf(JsonObject cell, string fixturesDir)
    {
        var producer = cell["producer"]!.GetValue<string>();
        if (!producer.EndsWith(GoldenSuffix, StringComparison.Ordinal)) return null;
        var route = cell["route"]!.GetValue<string>();
        return Path.Combine(fixturesDir, producer[..^GoldenSuffix.Length], cell["case"]!.GetValue<string>() + "." + route + Catalogue.ExtensionOf(route));
    }

    /// <summary>Every golden cell whose fixture check read, against that reader's result in check.</summary>
    public static IReadOnlyList<Disagreement> Compare(IEnumerable<JsonObject> cells, CheckRun check, string fixturesDir, Func<string, string> kindOf)
    {
        var files = check.Files.ToDictionary(f => Path.GetFullPath(f.Path));
        var found = new List<Disagreement>();
        foreach (var cell in cells)
        {
            var outcome = cell["outcome"]!.GetValue<string>();
            if (outcome is "skipped" or "not_applicable") continue;
            if (FixtureOf(cell, fixturesDir) is not { } fixture || !files.TryGetValue(Path.GetFullPath(fixture), out var file)) continue;
            // check runs each TorchSharp version once, its readers named by library: the cell's library picks the reader.
            var consumer = cell["consumer"]!.GetValue<string>();
            var runtime = Runtime.WithoutLibrary(consumer);
            if (ReaderOf(kindOf(runtime), cell["route"]!.GetValue<string>(), cell["mode"]!.GetValue<string>(), Runtime.LibraryOf(consumer)) is not { } reader) continue;
            var result = file.Readers.FirstOrDefault(r => r.Runtime == runtime && r.Reader == reader);
            // check ran no such reader (it would execute a pickle's globals, or the runtime lacks it): nothing to compare.
            if (result is null || result.Status == "not_run") continue;
            var problems = (cell["problems"]?.AsArray() ?? []).Select(p => p!["code"]?.GetValue<string>() ?? "").ToHashSet();
            var (expect, ok) = problems.Contains("load_error")
                ? ($"{outcome} with load_error", result.Status == "failed")
                : problems.Overlaps(ContentProblems)
                    ? ($"{outcome} with {string.Join(", ", problems.Order())} (it loads, the tensors differ)", result.Status is "identical" or "differs" or "read")
                    : ($"{outcome}{(problems.Count > 0 ? " with " + string.Join(", ", problems.Order()) : "")} (it loads with the producer's bytes)", result.Identical);
            if (!ok) found.Add(new(cell["cell"]!.GetValue<string>(), fixture, reader, expect, $"{result.Status}: {Verdicts.Trim(result.Message, 200)}"));
        }
        return found;
    }
}
