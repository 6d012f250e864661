using Conformance.Orchestrator.Ledger;
using Conformance.Orchestrator.Matrix;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// The optimizer_state route: <c>torch.save(optimizer.state_dict())</c> beside the model's state dict, against
/// PyBridge's <c>optimizer.save_py/load_py</c> and TorchCheckpoints' <c>optimizer.save_pytorch/load_pytorch</c>,
/// for every optimizer of the catalogue, judged by resume-equivalence as the checkpoint route is.
/// </summary>
[Trait("Category", "matrix")]
[Collection(MatrixCollection.Name)]
public sealed class OptimizerStateSpecs(MatrixFixture fixture, ITestOutputHelper output)
{
    /// <summary>Skips when a runtime is missing (fails under CONFORMANCE_REQUIRE_ALL=1): these specs read every library's cells.</summary>
    private void RequireRuntimes() =>
        MatrixFixture.SkipOrFailWhenMissing(fixture.Run.Runtimes.Where(r => !r.Runtime.Available).Select(r => r.Runtime.MissingReason).FirstOrDefault());

    private List<CellResult> Cells => fixture.Run.Results.Where(r => r.Cell.Route == Catalogue.OptimizerState && r.Outcome != Outcome.Skipped).ToList();

    [SkippableFact]
    public void Every_optimizer_of_the_catalogue_crosses_both_ways_with_both_libraries()
    {
        RequireRuntimes();
        var cases = Catalogue.All.Where(c => c.Routes.Contains(Catalogue.OptimizerState)).ToList();
        // Every optimizer of the catalogue but the LR schedulers' cases (their state is the scheduler's, the checkpoint route's).
        Assert.Equal(Catalogue.Optimizers.Order(), cases.Select(c => c.Optimizer!).Order());
        foreach (var c in cases)
            foreach (var library in Catalogue.LibrariesOf(Catalogue.OptimizerState))
            {
                bool Side(string runtime) => Runtime.LibraryOf(runtime) == library;
                var written = Cells.Where(r => r.Cell.Case == c.Name && Side(r.Cell.Producer) && !Runtime.IsAccelerator(Runtime.DeviceOf(r.Cell.Consumer))).ToList();
                var read = Cells.Where(r => r.Cell.Case == c.Name && Side(r.Cell.Consumer)).ToList();
                if (c.Optimizer == "lbfgs")
                {
                    // TorchSharp's LBFGS has no state to save or load: not applicable, said why, on both sides.
                    Assert.All(written.Concat(read), r => Assert.Equal(Outcome.NotApplicable, r.Outcome));
                    Assert.All(written.Concat(read), r => Assert.Contains("LBFGS", r.Message));
                    continue;
                }
                Assert.NotEmpty(written);
                Assert.NotEmpty(read);
                // Not applicable only where a PyTorch consumer lacks the load mode (torch 1.13 has no mmap), never for the library.
                Assert.All(written.Concat(read), r => Assert.True(r.Outcome is Outcome.Pass or Outcome.KnownFailure
                    || (r.Outcome == Outcome.NotApplicable && r.Message.StartsWith("not_applicable: consumer pytorch-", StringComparison.Ordinal)), $"{r.Cell.Name}: {r.Outcome.Wire()}: {r.Message}"));
            }
    }

    /// <summary>TorchCheckpoints carries every optimizer's state both ways; what fails in its cells is TorchSharp's or PyTorch's, never the library's.</summary>
    [SkippableFact]
    public void TorchCheckpoints_cells_fail_only_on_TorchSharp_or_PyTorch_findings()
    {
        RequireRuntimes();
        var tc = Cells.Where(r => (Runtime.LibraryOf(r.Cell.Producer) ?? Runtime.LibraryOf(r.Cell.Consumer)) == "torchcheckpoints"
                                  && Runtime.LibraryOf(r.Cell.Consumer) is null or "torchcheckpoints").ToList();
        Assert.NotEmpty(tc);
        foreach (var r in tc.Where(r => r.Outcome == Outcome.KnownFailure))
        {
            output.WriteLine($"{r.Cell.Name}: {r.Declared!.Id}");
            Assert.True(r.Declared!.Id.StartsWith("torchsharp-", StringComparison.Ordinal) || r.Declared.Id.StartsWith("pytorch-", StringComparison.Ordinal),
                $"{r.Cell.Name} is declared by {r.Declared.Id}, a finding of the library itself");
        }
        Assert.Contains(tc, r => r.Outcome == Outcome.Pass && r.Cell.Case == "ckpt_adam" && r.Cell.Producer.StartsWith("pytorch-2.", StringComparison.Ordinal));
        Assert.Contains(tc, r => r.Outcome == Outcome.Pass && r.Cell.Case == "ckpt_adam" && r.Cell.Consumer.StartsWith("pytorch-2.", StringComparison.Ordinal));
    }

    /// <summary>
    /// PyBridge's optimizer.load_py restores every buffer, step and hyperparameter of a PyTorch optimizer: its cells
    /// show no optimizer_state problem, and resume within tolerance wherever TorchSharp's own optimizer does.
    /// </summary>
    [SkippableFact]
    public void PyBridge_optimizer_load_py_restores_the_state_PyTorch_saved()
    {
        RequireRuntimes();
        var read = Cells.Where(r => r.Cell.Producer.StartsWith("pytorch-", StringComparison.Ordinal) && Runtime.LibraryOf(r.Cell.Consumer) == "pybridge" && r.Cell.Case != "ckpt_lbfgs").ToList();
        Assert.NotEmpty(read);
        Assert.All(read, r => Assert.DoesNotContain(r.Problems, p => p.Code == ProblemCodes.OptimizerState));
        Assert.All(read.Where(r => r.Cell.Case != "ckpt_radam"), r => Assert.DoesNotContain(r.Problems, p => p.Code == ProblemCodes.Resume));
        // Every such cell reports the model PyBridge's load_py left frozen (the fine_tune observation): the check ran.
        Assert.All(read, r => Assert.Contains(r.Problems, p => p.Code == ProblemCodes.FrozenAfterLoad));
    }
}
