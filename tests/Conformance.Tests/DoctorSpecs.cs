using System.Text;
using Conformance.Orchestrator.Diagnosis;
using Conformance.Orchestrator.Runtimes;
using Xunit.Abstractions;

namespace Conformance.Tests;

[Trait("Category", "runtime")]
public sealed class DoctorSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("doctor-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Library(params string[] versions)
    {
        // Version names sit in .dynstr between NUL bytes and unrelated symbols, as in a real ELF.
        var path = Path.Combine(_tmp, Guid.NewGuid().ToString("N") + ".so");
        File.WriteAllText(path, "\x7f" + "ELF\0_ZNSt8ios_base4InitC1Ev\0" + string.Join("\0", versions) + "\0GLIBCXX_TUNABLES\0CXXABI_1.3.13\0", Encoding.Latin1);
        return path;
    }

    private DoctorOptions Options(string? rootfs = null, string? hostLib = null, string? torchSharpLib = null) =>
        new(rootfs ?? Path.Combine(_tmp, "no-rootfs"), hostLib, Pythons: [], TorchSharpNative: torchSharpLib);

    [Fact]
    public void A_glibcxx_list_is_read_from_a_library_s_bytes_and_ordered_by_number()
    {
        var bytes = Encoding.Latin1.GetBytes("\0GLIBCXX_3.4\0GLIBCXX_3.4.9\0GLIBCXX_3.4.30\0GLIBCXX_3.4.29\0GLIBCXX_3.4.9\0GLIBCXX_TUNABLES\0CXXABI_1.3.13\0");
        var versions = Doctor.GlibcxxVersions(bytes);
        Assert.Equal(["GLIBCXX_3.4", "GLIBCXX_3.4.9", "GLIBCXX_3.4.29", "GLIBCXX_3.4.30"], versions.Select(Doctor.Glibcxx));
        Assert.Equal(new Version(3, 4, 30), Doctor.HighestGlibcxx(Library("GLIBCXX_3.4.30", "GLIBCXX_3.4.4")));
        Assert.Null(Doctor.HighestGlibcxx(Path.Combine(_tmp, "absent.so")));
    }

    [Fact]
    public void An_old_host_libstdcxx_cannot_load_TorchSharp_and_the_remedy_is_the_rootfs()
    {
        var report = Doctor.Examine(RepoLayout.Find(), Options(hostLib: Library("GLIBCXX_3.4.29", "GLIBCXX_3.4.30"), torchSharpLib: Library("GLIBCXX_3.4.32", "GLIBCXX_3.4.9")));
        var host = report["TorchSharp on the host"]!;
        Assert.Equal(CheckStatus.Fail, host.Status); // the rootfs does not exist either, so nothing can take over
        Assert.Contains("cannot load natively", host.Found);
        Assert.Contains("tops at GLIBCXX_3.4.30, needs GLIBCXX_3.4.32", host.Found);
        Assert.Contains("make rootfs", host.Remedy);
        Assert.Contains("needs GLIBCXX_3.4.32", report["libLibTorchSharp.so"]!.Found);
    }

    [Fact]
    public void A_new_enough_host_libstdcxx_loads_TorchSharp_natively()
    {
        var report = Doctor.Examine(RepoLayout.Find(), Options(hostLib: Library("GLIBCXX_3.4.32", "GLIBCXX_3.4.33"), torchSharpLib: Library("GLIBCXX_3.4.32")));
        Assert.Equal(CheckStatus.Ok, report["TorchSharp on the host"]!.Status);
    }

    [Fact]
    public void A_rootfs_that_does_not_exist_fails_with_the_make_rootfs_remedy()
    {
        var missing = Path.Combine(_tmp, "no-rootfs");
        var report = Doctor.Examine(RepoLayout.Find(), Options(rootfs: missing));
        var rootfs = report["rootfs"]!;
        Assert.Equal((CheckStatus.Fail, $"{missing} does not exist", "run `make rootfs`"), (rootfs.Status, rootfs.Found, rootfs.Remedy));
        Assert.Equal(CheckStatus.Fail, report["rootfs mounts"]!.Status);
        Assert.Equal(CheckStatus.Fail, report["TorchSharp in the rootfs"]!.Status);
        Assert.Equal(CheckStatus.Fail, report["PyTorch runtimes"]!.Status); // no interpreters were offered
        Assert.False(report.Healthy);
        Assert.Contains("-> run `make rootfs`", report.Text());
    }

    [Fact]
    public void A_provisioned_rootfs_with_an_older_package_list_asks_to_be_topped_up_and_to_be_mounted()
    {
        var rootfs = Directory.CreateDirectory(Path.Combine(_tmp, "rootfs")).FullName;
        File.WriteAllText(Path.Combine(rootfs, ".conformance-provisioned"), "python3-torch\n");
        var report = Doctor.Examine(RepoLayout.Find(), Options(rootfs: rootfs));
        Assert.Equal((CheckStatus.Warn, "run `make rootfs` (tops it up)"), (report["rootfs"]!.Status, report["rootfs"]!.Remedy));
        var mounts = report["rootfs mounts"]!;
        Assert.Equal(CheckStatus.Fail, mounts.Status);
        Assert.Contains($"proc ({rootfs}/proc)", mounts.Found);
        Assert.StartsWith("run `make mount`", mounts.Remedy);
    }

    /// <summary>On Debian 12 (this project's machines) libstdc++ stops at GLIBCXX_3.4.30: TorchSharp must go to the rootfs.</summary>
    [SkippableFact(Timeout = 120_000)]
    public async Task On_this_machine_the_doctor_says_where_TorchSharp_can_load()
    {
        await Task.Yield();
        var repo = RepoLayout.Find();
        var report = Doctor.Examine(repo);
        output.WriteLine(report.Text());
        var hostLib = Doctor.LibStdCxxIn("/");
        Skip.If(hostLib is null, "no libstdc++.so.6 on this machine");
        var host = report["TorchSharp on the host"]!;
        var need = Doctor.HighestGlibcxx(Directory.EnumerateFiles(Path.Combine(repo.Root, "harness", "Conformance.Workers.TorchSharp", "bin"), "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault())
                   ?? new Version(3, 4, 32);
        var has = Doctor.HighestGlibcxx(hostLib)!;
        if (File.Exists("/etc/debian_version") && File.ReadAllText("/etc/debian_version").StartsWith("12"))
            Assert.Contains("tops at GLIBCXX_3.4.30", host.Found);
        if (has >= need) Assert.Equal(CheckStatus.Ok, host.Status);
        else
        {
            Assert.NotEqual(CheckStatus.Ok, host.Status);
            Assert.Contains("cannot load natively", host.Found);
            Assert.Contains("rootfs", host.Remedy);
        }
        Assert.Equal(CheckStatus.Ok, report[".NET SDK"]!.Status);
        Assert.All(report.Checks.Where(c => c.Status != CheckStatus.Ok), c => Assert.False(string.IsNullOrWhiteSpace(c.Remedy), c.Name));
    }
}
