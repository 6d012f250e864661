using System.Text.Json.Nodes;
using Conformance.Orchestrator;
using Conformance.Orchestrator.Check;
using Conformance.Orchestrator.Runs;
using Conformance.Orchestrator.Runtimes;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// One answer, two places: the matrix's golden cells (`conformance run`, what it writes to compatibility.json) and
/// `conformance check` on the same committed fixtures, compared reader by reader (<see cref="MatrixAgreement"/>).
/// The fixtures: every committed fixture of every set (the GPU-made one included); CONFORMANCE_AGREEMENT_CASES=a,b
/// picks some cases. Where they differ by design, the difference is declared below, with its reason, and must still
/// occur (an entry that no longer matches is stale and fails, as a known failure that passes does).
/// </summary>
[Trait("Category", "runtime")]
public sealed class CheckAgreementSpecs(ITestOutputHelper output)
{
    private static readonly string Root = RepoLayout.Find().Root;

    /// <summary>
    /// Cells where check and the matrix answer different questions. check loads into a module built from the file's
    /// own keys and shapes (contiguous zeros), the matrix into the twin; and the matrix's checkpoint cells go on to
    /// rebuild the optimizer and scheduler, which check does not. '*' is one name segment's part.
    /// </summary>
    private static readonly (string Cell, string Why)[] KnownDisagreements =
    [
        ("ckpt_onecycle/checkpoint/*@golden->torchsharp-0.107+torchcheckpoints/default",
            "the matrix's cell also rebuilds TorchSharp's OneCycleLR, which throws (known failure torchsharp-onecycle-restart-throws); check only reads the file, which the codec does"),
        ("layouts/torchsharp_native/*@golden->torchsharp-0.107/default",
            "Module.load into the twin's transposed parameter throws 'Bytes() called on non-contiguous tensor' (torchsharp-load-noncontiguous); check's module holds contiguous tensors"),
        ("storage_views/torchsharp_native/*@golden->torchsharp-0.107/default",
            "as layouts: the twin's views are non-contiguous, check's module is not"),
        ("storage_offsets/pickle/*@golden->torchsharp-0.107+pybridge/default",
            "load_py into the twin's views of one storage reads at the wrong offsets without a word (or, from TorchSharp's own file, right); into check's separate contiguous tensors it throws"),
        ("storage_offsets/hf_bin_sharded/*@golden->torchsharp-0.107+pybridge/default",
            "as storage_offsets/pickle, shard by shard"),
        ("tied_weights/hf_safetensors/*@golden->torchsharp-0.107+pybridge/default",
            "save_model keeps one of two tied tensors; the twin asks for both and strict loading fails (pybridge-drops-safetensors-alias), check's module has the file's one key. Use --model-twin to see it"),
        ("tied_weights/hf_safetensors_sharded/*@golden->torchsharp-0.107+pybridge/default",
            "as tied_weights/hf_safetensors"),
    ];

    private static bool Matches(string glob, string cell) =>
        System.Text.RegularExpressions.Regex.IsMatch(cell, "^" + string.Join("[^/]*", glob.Split('*').Select(System.Text.RegularExpressions.Regex.Escape)) + "$");

    [SkippableFact]
    public void Check_on_every_committed_fixture_says_what_the_matrix_golden_cells_say_reader_by_reader_and_a_planted_difference_is_caught()
    {
        var suite = new Suite(RepoLayout.Find());
        var missing = suite.Runtimes.Where(r => !r.Available).Select(r => r.Id).ToList();
        if (missing.Count > 0)
        {
            if (Suite.RequireAll) Assert.Fail($"CONFORMANCE_REQUIRE_ALL=1 and a runtime is missing: {string.Join(", ", missing)}");
            Skip.If(true, "missing: " + string.Join(", ", missing));
        }
        var cases = Environment.GetEnvironmentVariable("CONFORMANCE_AGREEMENT_CASES") is { Length: > 0 } c ? c : "*";
        var dir = Path.Combine(Root, "artifacts", "tests", "agreement");
        var (code, text) = Shell.Run($"dotnet {CliSpecs.Cli()} run --case '{cases}' --cells '*/*/*@golden->*/*' --out {dir} --artifacts {dir}/artifacts", TimeSpan.FromMinutes(10), output);
        Assert.True(code is 0 or 1, text);
        var cells = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "compatibility.json")))!["results"]!.AsArray().OfType<JsonObject>().ToList();
        Assert.NotEmpty(cells);

        var fixtures = cells.Select(cell => MatrixAgreement.FixtureOf(cell, Path.Combine(Root, "fixtures"))).OfType<string>()
            .Distinct().Where(p => File.Exists(p) || Directory.Exists(p)).Order(StringComparer.Ordinal).ToList();
        var run = new FileCheck(suite, RunnerOptions.FromEnvironment(Path.Combine(dir, "check"))).Run(fixtures);
        var kinds = suite.Runtimes.ToDictionary(r => r.Id, r => r.Kind);
        string Kind(string id) => kinds.TryGetValue(id, out var k) ? k : id.StartsWith(RuntimeKinds.PyTorch, StringComparison.Ordinal) ? RuntimeKinds.PyTorch : RuntimeKinds.TorchSharp;

        var disagreements = MatrixAgreement.Compare(cells, run, Path.Combine(Root, "fixtures"), Kind);
        var compared = cells.Count(cell => MatrixAgreement.FixtureOf(cell, Path.Combine(Root, "fixtures")) is { } f && fixtures.Contains(f)
                                           && cell["outcome"]!.GetValue<string>() is not ("skipped" or "not_applicable")
                                           && MatrixAgreement.ReaderOf(Kind(cell["consumer"]!.GetValue<string>()), cell["route"]!.GetValue<string>(), cell["mode"]!.GetValue<string>()) is not null);
        output.WriteLine($"{fixtures.Count} fixtures, {cells.Count} golden cells, {compared} with a check reader, {disagreements.Count} disagreements");
        foreach (var d in disagreements) output.WriteLine((KnownDisagreements.Any(k => Matches(k.Cell, d.Cell)) ? "declared: " : "") + d);
        Assert.True(fixtures.Count >= 20, $"only {fixtures.Count} fixtures");
        Assert.True(compared >= 100, $"only {compared} cells compared");
        var undeclared = disagreements.Where(d => !KnownDisagreements.Any(k => Matches(k.Cell, d.Cell))).ToList();
        Assert.True(undeclared.Count == 0, $"{undeclared.Count} undeclared disagreements:\n{string.Join("\n", undeclared)}");
        var ran = cells.Select(cell => cell["cell"]!.GetValue<string>()).ToList();
        foreach (var (cell, why) in KnownDisagreements.Where(k => ran.Any(r => Matches(k.Cell, r))))
            Assert.True(disagreements.Any(d => Matches(cell, d.Cell)), $"stale: {cell} now agrees ({why}); remove it from KnownDisagreements");

        // Planted: TorchSharp's load_py on the 2.6 state dict reads other bytes; the comparison names that cell and reader, and only it.
        var target = Path.Combine(Root, "fixtures", "pytorch-2.6", "lenet.pickle.pt");
        var planted = run with
        {
            Files = run.Files.Select(f => Path.GetFullPath(f.Path) != target ? f : f with
            {
                Readers = f.Readers.Select(r => r.Runtime == "torchsharp-0.107" && r.Reader == "PyBridge load_py (strict)"
                    ? r with { Status = "differs", Message = "planted: 'conv1.weight' has other bytes than PyTorch read" } : r).ToList(),
            }).ToList(),
        };
        var caught = MatrixAgreement.Compare(cells, planted, Path.Combine(Root, "fixtures"), Kind).Except(disagreements).ToList();
        foreach (var d in caught) output.WriteLine("planted → " + d);
        var one = Assert.Single(caught);
        Assert.Equal("lenet/pickle/pytorch-2.6@golden->torchsharp-0.107+pybridge/default", one.Cell);
        Assert.Equal("PyBridge load_py (strict)", one.Reader);
    }
}
