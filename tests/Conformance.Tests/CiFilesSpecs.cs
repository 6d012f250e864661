using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// The CI files maintainers run the gate with (.github/workflows/conformance.yml, .ci/azure-pipelines.yml)
/// are valid, and the validator really looks: a misspelt key planted in a copy of each fails, naming it.
/// </summary>
[Trait("Category", "runtime")]
public sealed class CiFilesSpecs(ITestOutputHelper output)
{
    private static readonly string Repo = Conformance.Orchestrator.Runtimes.RepoLayout.Find().Root;

    [Fact(Timeout = 300_000)]
    public async Task The_workflow_and_the_pipeline_validate_and_a_planted_mistake_in_each_is_refused()
    {
        await Task.Yield();
        var (code, text) = Shell.Run($"bash {Repo}/scripts/validate-ci.sh", TimeSpan.FromMinutes(4), output);
        Assert.True(code == 0, text);
        Assert.Contains("ok: .github/workflows/conformance.yml (action-validator)", text);
        Assert.Contains("ok: .ci/azure-pipelines.yml", text);

        var dir = Path.Combine(Repo, "artifacts", "tests", "ci-files");
        Directory.CreateDirectory(dir);
        var workflow = Path.Combine(dir, "bad-workflow.yml");
        File.WriteAllText(workflow, File.ReadAllText(Path.Combine(Repo, ".github", "workflows", "conformance.yml")).Replace("runs-on: ubuntu-latest", "runs-onn: ubuntu-latest"));
        var pipeline = Path.Combine(dir, "bad-pipeline.yml");
        File.WriteAllText(pipeline, File.ReadAllText(Path.Combine(Repo, ".ci", "azure-pipelines.yml")).Replace("    steps:", "    stepz:"));
        (code, text) = Shell.Run($"WORKFLOWS={workflow} AZURE={pipeline} bash {Repo}/scripts/validate-ci.sh", TimeSpan.FromMinutes(4), output);
        Assert.Equal(1, code);
        Assert.Contains($"INVALID: {workflow}", text);
        Assert.Contains("Additional property 'runs-onn' is not allowed", text);
        Assert.Contains($"INVALID: {pipeline}: at jobs/0: Additional properties are not allowed ('stepz' was unexpected)", text);
    }
}
