using System.Text.Json.Nodes;
using ApprovalTests;
using ApprovalTests.Reporters;

namespace Conformance.Tests;

/// <summary>The seed's listing: every runtime prints the same state_dict keys and sizes, and the same SGD hyperparameters.</summary>
[Trait("Category", "matrix")]
[Collection(MatrixCollection.Name)]
[UseReporter(typeof(QuietReporter))]
public sealed class ListingSpecs(MatrixFixture fixture)
{
    private List<(string Runtime, JsonNode Listing)> Listings()
    {
        var missing = fixture.Run.Runtimes.Where(r => !r.Runtime.Available).Select(r => r.Runtime.Id + ": " + r.Runtime.MissingReason).ToList();
        MatrixFixture.SkipOrFailWhenMissing(missing.Count == 0 ? null : string.Join("; ", missing));
        return fixture.Run.Runtimes.Select(r => (r.Runtime.Id, r.Listings.GetValueOrDefault("lenet")
            ?? throw new Xunit.Sdk.XunitException($"{r.Runtime.Id} printed no listing: {r.Error}"))).ToList();
    }

    private static string ModelSection(JsonNode listing) =>
        listing["text"]!.GetValue<string>().Split("Optimizer's state_dict:")[0].TrimEnd();

    [SkippableFact]
    public void Every_runtime_lists_the_same_state_dict_keys_and_sizes_as_the_approved_seed_listing()
    {
        var listings = Listings();
        var reference = ModelSection(listings[0].Listing);
        foreach (var (id, l) in listings)
            Assert.True(reference == ModelSection(l), $"{id} lists the model differently from {listings[0].Runtime}:\n{ModelSection(l)}\n---\n{reference}");
        Approvals.Verify(reference);
    }

    [SkippableFact]
    public void Every_runtime_lists_the_seeds_sgd_hyperparameters()
    {
        foreach (var (id, l) in Listings())
        {
            var g = l["optimizer"]!["param_groups"]!.AsArray().Single()!;
            Assert.True(0.001 == g["lr"]!.GetValue<double>(), $"{id}: lr {g["lr"]}");
            Assert.True(0.9 == g["momentum"]!.GetValue<double>(), $"{id}: momentum {g["momentum"]}");
            Assert.True(0.0 == g["dampening"]!.GetValue<double>(), $"{id}: dampening {g["dampening"]}");
            Assert.True(0.0 == g["weight_decay"]!.GetValue<double>(), $"{id}: weight_decay {g["weight_decay"]}");
            Assert.False(g["nesterov"]!.GetValue<bool>(), $"{id}: nesterov");
            Assert.Equal(Enumerable.Range(0, 10), g["params"]!.AsArray().Select(p => p!.GetValue<int>()));
            var text = l["text"]!.GetValue<string>();
            Assert.Contains("state \t {}", text);
            Assert.Contains("param_groups \t [{'lr': 0.001, 'momentum': 0.9, 'dampening': 0, 'weight_decay': 0, 'nesterov': False", text);
        }
    }
}
