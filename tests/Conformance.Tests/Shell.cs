using System.Diagnostics;
using Conformance.Orchestrator.Runtimes;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>Runs a bash command line in the repository, with a timeout; its output goes to the test's log (last 4,000 characters).</summary>
internal static class Shell
{
    public static (int Code, string Text) Run(string shellCommand, TimeSpan timeout, ITestOutputHelper? output = null)
    {
        var psi = new ProcessStartInfo("bash", ["-c", shellCommand])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepoLayout.Find().Root,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout)) { p.Kill(true); Assert.Fail($"timed out after {timeout}: {shellCommand}"); }
        var text = stdout.Result + stderr.Result;
        output?.WriteLine(text.Length > 4000 ? text[^4000..] : text);
        return (p.ExitCode, text);
    }
}
