using Conformance.Orchestrator.Runtimes;

namespace Conformance.Orchestrator.Matrix;

/// <summary>How close a consumer's eval outputs must be to the producer's: |c - p| ≤ atol + rtol·|p|.</summary>
public sealed record Tolerance(double Atol, double Rtol)
{
    public override string ToString() => $"atol={Atol:g3}, rtol={Rtol:g3}";
}

/// <summary>A named case: a model twin, how its artifact may cross, and its tolerance.</summary>
public sealed record CaseSpec(string Name, string Description, Tolerance Tolerance, IReadOnlyList<string> Routes);

/// <summary>The declarative list of cases and routes the matrix is built from.</summary>
public static class Catalogue
{
    public const string Pickle = "pickle";

    public static readonly IReadOnlyList<CaseSpec> Cases =
    [
        // The seed's LeNet. The weights cross bit-identically; the outputs come from two libtorch
        // builds (different conv kernels), so they are compared with a small float32 tolerance.
        new("lenet", "The seed's TheModelClass (conv1, pool, conv2, fc1, fc2, fc3) after 3 SGD steps (lr=0.001, momentum=0.9)",
            new Tolerance(Atol: 1e-5, Rtol: 1e-4), [Pickle]),
    ];

    /// <summary>The load modes a consumer of this kind offers on a route; each is its own cell.</summary>
    public static IReadOnlyList<string> LoadModes(string consumerKind, string route) => consumerKind switch
    {
        RuntimeKinds.PyTorch when route == Pickle => ["default", "weights_only", "mmap", "map_location_cpu"],
        _ => ["default"],
    };

    public static CaseSpec Case(string name) =>
        Cases.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"unknown case '{name}'");
}
