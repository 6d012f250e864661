using System.Diagnostics;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

/// <summary>
/// scripts/rootfs.sh mount on a checkout deleted and cloned again at the same path (what a CI that
/// reuses its clone folder does): the rootfs must show the new checkout, not the deleted one that an
/// earlier bind still holds.
/// </summary>
[Trait("Category", "runtime")]
public sealed class RootfsMountSpecs
{
    private static string Sh(string command)
    {
        var psi = new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoLayout.Find().Root };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{command}: {output}");
        return output;
    }

    [SkippableFact]
    public void A_checkout_cloned_again_at_the_same_path_is_mounted_afresh()
    {
        var rootfs = Sh("scripts/rootfs.sh path trixie").Trim();
        MatrixFixture.SkipOrFailWhenMissing(Directory.Exists(Path.Combine(rootfs, "usr")) ? null : $"no rootfs at {rootfs}");
        var checkout = Path.Combine(Path.GetTempPath(), $"conformance-remount-{Environment.ProcessId}");
        var inside = rootfs + checkout;
        try
        {
            Directory.CreateDirectory(checkout);
            File.WriteAllText(Path.Combine(checkout, "marker"), "first");
            Sh($"scripts/rootfs.sh mount {checkout}");
            Assert.Equal("first", File.ReadAllText(Path.Combine(inside, "marker")));

            Directory.Delete(checkout, recursive: true); // the old bind now shows a deleted folder
            Directory.CreateDirectory(checkout);
            File.WriteAllText(Path.Combine(checkout, "marker"), "second");
            var log = Sh($"scripts/rootfs.sh mount {checkout}");
            Assert.Contains("replacing a stale mount", log);
            Assert.Equal("second", File.ReadAllText(Path.Combine(inside, "marker")));
        }
        finally
        {
            foreach (var root in Sh("scripts/rootfs.sh path trixie; scripts/rootfs.sh path forky").Split('\n', StringSplitOptions.RemoveEmptyEntries))
                Sh($"umount -l {root.Trim()}{checkout} 2>/dev/null; rmdir {root.Trim()}{checkout} 2>/dev/null; true");
            if (Directory.Exists(checkout)) Directory.Delete(checkout, recursive: true);
        }
    }
}
