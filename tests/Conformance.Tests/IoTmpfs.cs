using System.Diagnostics;
using Conformance.Orchestrator.Runtimes;

namespace Conformance.Tests;

/// <summary>
/// A real, tiny tmpfs (we run as root) for the full-disk specs, mounted at <see cref="Dir"/> and bound
/// at the same path inside each rootfs given, so a worker chrooted there writes into the same small
/// file system. Disposing unmounts the binds first, then the tmpfs, and removes the folder.
/// </summary>
internal sealed class IoTmpfs : IDisposable
{
    private readonly List<string> _mounts = [];
    public string Dir { get; }

    private IoTmpfs(string dir) => Dir = dir;

    /// <summary>Mounts <paramref name="sizeKb"/> KiB of tmpfs at <paramref name="dir"/>; null (with the reason) where this machine cannot.</summary>
    public static IoTmpfs? Mount(string dir, int sizeKb, IEnumerable<string> rootfsRoots, out string? why)
    {
        why = null;
        if (!OperatingSystem.IsLinux()) { why = "tmpfs needs Linux"; return null; }
        Directory.CreateDirectory(dir);
        var fs = new IoTmpfs(dir);
        var (code, text) = Sh("mount", "-t", "tmpfs", "-o", $"size={sizeKb}k", "tmpfs", dir);
        if (code != 0) { why = $"cannot mount a tmpfs at {dir} (root needed): {text}"; Directory.Delete(dir); return null; }
        fs._mounts.Add(dir);
        try
        {
            foreach (var root in rootfsRoots.Distinct())
            {
                var inside = root + dir;
                var (c, t) = Sh("mount", "--bind", dir, inside);
                if (c != 0) throw new InvalidOperationException($"mount --bind {dir} {inside}: {t}");
                fs._mounts.Add(inside);
            }
        }
        catch
        {
            fs.Dispose();
            throw;
        }
        return fs;
    }

    /// <summary>Every rootfs a runtime's worker is chrooted into (its launch is <c>chroot ROOT …</c>).</summary>
    public static IEnumerable<string> RootfsOf(IEnumerable<Runtime> runtimes) =>
        runtimes.Where(r => r.Launch is { Command: ["chroot", _, ..] }).Select(r => r.Launch!.Command[1]).Distinct();

    /// <summary>Fills the file system until it refuses another byte; returns the filler's size.</summary>
    public long Fill()
    {
        var filler = Path.Combine(Dir, "filler");
        long n = 0;
        try
        {
            using var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1);
            var block = new byte[4096];
            while (true) { f.Write(block); n += block.Length; }
        }
        catch (IOException) { }
        return n;
    }

    /// <summary>Every file left in the tmpfs, relative to it.</summary>
    public List<string> Files(params string[] except) =>
        Directory.GetFiles(Dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Dir, f)).Where(f => !except.Contains(f)).Order().ToList();

    public void Dispose()
    {
        // Binds inside the rootfs first, then the tmpfs itself.
        foreach (var m in Enumerable.Reverse(_mounts))
            if (Sh("umount", m).Code != 0) Sh("umount", "-l", m);
        _mounts.Clear();
        try { Directory.Delete(Dir); } catch (IOException) { }
    }

    public static (int Code, string Text) Sh(params string[] argv)
    {
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, text.Trim());
    }
}
