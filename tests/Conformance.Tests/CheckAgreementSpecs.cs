using System.Text.Json.Nodes;
using Conformance.Orchestrator;
using Conformance.Orchestrator.Check;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// One answer, two places: the matrix's golden cells (`conformance run`, what it writes to compatibility.json) and
/// `conformance check` on the same committed fixtures, compared reader by reader (<see cref="MatrixAgreement"/>).
/// The fixtures: every committed set's lenet files (state dict, legacy, pickled model, safetensors, TorchScript
/// scripted and traced, TorchSharp native, Hugging Face folders, the GPU-made set included) and ckpt_adam;
/// CONFORMANCE_AGREEMENT_CASES=a,b picks others.
/// </summary>
[Trait("Category", "runtime")]
public sealed class CheckAgreementSpecs(ITestOutputHelper output)
{
    private static readonly string Root = RepoLayout.Find().Root;

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
        var cases = Environment.GetEnvironmentVariable("CONFORMANCE_AGREEMENT_CASES") is { Length: > 0 } c ? c : "lenet,ckpt_adam";
        var dir = Path.Combine(Root, "artifacts", "tests", "agreement");
        var (code, text) = Shell.Run($"dotnet {CliSpecs.Cli()} run --case {cases} --cells '*/*/*@golden->*/*' --out {dir} --artifacts {dir}/artifacts", TimeSpan.FromMinutes(10), output);
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
        foreach (var d in disagreements) output.WriteLine(d.ToString());
        Assert.True(fixtures.Count >= 20, $"only {fixtures.Count} fixtures");
        Assert.True(compared >= 100, $"only {compared} cells compared");
        Assert.Empty(disagreements);

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
        var caught = MatrixAgreement.Compare(cells, planted, Path.Combine(Root, "fixtures"), Kind);
        foreach (var d in caught) output.WriteLine("planted → " + d);
        var one = Assert.Single(caught);
        Assert.Equal("lenet/pickle/pytorch-2.6@golden->torchsharp-0.107/default", one.Cell);
        Assert.Equal("PyBridge load_py (strict)", one.Reader);
    }
}
