using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Tests;

/// <summary>
/// Every real worker, having loaded torch and done a cell's work, ends by itself within the
/// orchestrator's grace after <c>shutdown</c>, with exit code 0. A PyTorch worker that returned from
/// Main ran pythonnet's interpreter shutdown (6 s with torch 1.13, 15-16 s with 2.6 and 2.14) and was
/// killed at the end of every run, its runtime's files left in /tmp.
/// </summary>
[Trait("Category", "runtime")]
public sealed class WorkerShutdownSpecs(Xunit.Abstractions.ITestOutputHelper output)
{
    [SkippableFact(Timeout = 300_000)]
    public async Task Every_real_worker_ends_with_exit_code_0_within_the_grace_after_shutdown()
    {
        var runtimes = MatrixFixture.Suite.Runtimes.Where(r => r.Available && r.Kind is RuntimeKinds.PyTorch or RuntimeKinds.TorchSharp).ToList();
        MatrixFixture.SkipOrFailWhenMissing(runtimes.Any(r => r.Kind == RuntimeKinds.PyTorch) && runtimes.Any(r => r.Kind == RuntimeKinds.TorchSharp)
            ? null : "needs a PyTorch and a TorchSharp runtime");
        var dir = Path.Combine(RepoLayout.Find().ArtifactsDir, "tests", "worker-shutdown");
        Directory.CreateDirectory(dir);
        var endings = await Task.WhenAll(runtimes.Select(r => Task.Run(() =>
        {
            using var pool = new WorkerPool(TimeSpan.FromSeconds(180));
            var args = new JsonObject { ["case"] = "lenet", ["route"] = "pickle", ["path"] = Path.Combine(dir, r.Id + ".pt"), ["seed"] = 0 };
            var reply = pool.Send(r, Ops.Produce, args, TimeSpan.FromSeconds(180));
            Assert.True(reply.Result is not null, $"{r.Id}: {reply}");
            pool.Dispose();
            return (r.Id, Ending: pool.Endings[r.Id]);
        })));
        Assert.All(endings, e => Assert.True(e.Ending.StartsWith("exited 0 after shutdown (", StringComparison.Ordinal), $"{e.Id}: {e.Ending}"));
        output.WriteLine(string.Join("\n", endings.Select(e => $"{e.Id}: {e.Ending}")));
    }
}
