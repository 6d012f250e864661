using System.Diagnostics;
using Conformance.Orchestrator.Runtimes;
using Xunit.Abstractions;

namespace Conformance.Tests;

/// <summary>
/// The CLI as a person meets it: in a real terminal (a pseudo-terminal from `script`) at several
/// widths, where the live progress bar draws, and with bad usage.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class CliSpecs(ITestOutputHelper output)
{
    internal static string Cli()
    {
        var root = RepoLayout.Find().Root;
        var dll = new[] { "Release", "Debug" }.Select(c => Path.Combine(root, "harness", "Conformance.Cli", "bin", c, "net10.0", "conformance.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        return dll ?? throw new FileNotFoundException("the CLI is not built: run `make build`");
    }

    private (int Code, string Text) Run(string shellCommand, TimeSpan timeout) => Shell.Run(shellCommand, timeout, output);

    [Theory(Timeout = 300_000)]
    [InlineData(40)]
    [InlineData(80)]
    [InlineData(200)]
    public async Task The_cli_runs_in_a_real_terminal_of_any_width_and_draws_its_progress(int columns)
    {
        await Task.Yield();
        var dir = Path.Combine(Path.GetTempPath(), $"conformance-tty-{columns}-{Environment.ProcessId}");
        var log = Path.Combine(dir, "terminal.log");
        Directory.CreateDirectory(dir);
        // `script -e` returns the command's exit status; what the terminal showed lands in the log.
        try
        {
            var command = $"stty cols {columns} rows 40; dotnet {Cli()} run --case lenet --route pickle --runtime pytorch-1.13 --out {dir}/report";
            var (code, text) = Run($"script -qec '{command}' {log}", TimeSpan.FromMinutes(4));
            var screen = File.ReadAllText(log);
            Assert.True(code == 0, $"exit {code} at {columns} columns:\n{text}");
            Assert.Contains("CONFORMANCE SUITE PASSED", screen);
            // The live bar (Spectre.Console, ANSI escapes) drew, not the sparse redirected lines.
            Assert.Contains("\u001b[", screen);
            Assert.DoesNotContain("Unhandled exception", screen);
            Assert.True(File.Exists(Path.Combine(dir, "report", "compatibility.json")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory(Timeout = 120_000)]
    [InlineData("run --no-such-option", "Unrecognized command or argument '--no-such-option'")]
    [InlineData("run --threads zero", "--threads")]
    [InlineData("run --shard 3/2", "--shard wants i/n with 1 <= i <= n")]
    [InlineData("frobnicate", "Unrecognized command or argument 'frobnicate'")]
    public async Task A_bad_option_or_value_is_an_error_that_shows_the_usage(string args, string expected)
    {
        await Task.Yield();
        var (code, text) = Run($"dotnet {Cli()} {args}", TimeSpan.FromMinutes(1));
        Assert.Equal(2, code);
        Assert.Contains(expected, text);
        Assert.Contains("Usage:", text);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_selection_that_matches_no_cell_is_refused_rather_than_run_empty()
    {
        await Task.Yield();
        var (code, text) = Run($"dotnet {Cli()} run --case no_such_case --out {Path.GetTempPath()}/conformance-empty", TimeSpan.FromMinutes(1));
        Assert.Equal(2, code);
        Assert.Contains("the selection matches none of the", text);
    }
}
