using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Conformance.Orchestrator.Runtimes;

// Not "…Doctor": a namespace named like its class would shadow the class for every file under Conformance.Orchestrator.
namespace Conformance.Orchestrator.Diagnosis;

/// <summary>
/// Says what this machine can and cannot run, and how to fix each problem: the interpreters that
/// have torch, whether TorchSharp's native library can load here or only in the rootfs, the rootfs and
/// its mounts, free disk, the .NET SDK and the built workers. It only looks: it mounts and installs nothing.
/// </summary>
public static class Doctor
{
    // What libLibTorchSharp.so of TorchSharp 0.107 asks for; used only until the worker is built and its library can be read.
    private static readonly Version AssumedTorchSharpNeed = new(3, 4, 32);
    private const string Stamp = ".conformance-provisioned";
    private const long GiB = 1L << 30;

    public static DoctorReport Examine(RepoLayout repo) => Examine(repo, DoctorOptions.FromEnvironment(repo));

    public static DoctorReport Examine(RepoLayout repo, DoctorOptions options)
    {
        var checks = new List<DoctorCheck>();
        checks.Add(DotnetSdk(repo));
        checks.AddRange(Workers(repo));
        checks.AddRange(Pythons(options));
        checks.AddRange(TorchSharpNative(repo, options));
        checks.Add(RootfsState("rootfs", options.Rootfs, Packages(repo, "trixie")));
        // The other rootfs environments.json declares (forky: PyTorch 2.14), where they are meant to be.
        foreach (var env in options.OtherRootfs)
            checks.Add(RootfsState($"rootfs {env.Id}", env.Path!, string.Join(" ", env.Packages)));
        checks.Add(RootfsMounts(repo, options));
        checks.AddRange(DiskSpace(repo, options.Rootfs));
        return new DoctorReport(checks);
    }

    /// <summary>
    /// Every GLIBCXX_x.y[.z] version named in a library's bytes, ascending by number (3.4.9 before 3.4.30).
    /// In libstdc++ these are the versions it defines; in a library that uses it, the versions it needs.
    /// </summary>
    public static IReadOnlyList<Version> GlibcxxVersions(ReadOnlySpan<byte> bytes)
    {
        // Latin1 maps each byte to one char, so the binary's strings survive as they are.
        var text = Encoding.Latin1.GetString(bytes);
        return Regex.Matches(text, @"GLIBCXX_(\d+)\.(\d+)(?:\.(\d+))?")
            .Select(m => new Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), m.Groups[3].Success ? int.Parse(m.Groups[3].Value) : 0))
            .Distinct().Order().ToList();
    }

    /// <summary>The highest GLIBCXX version in a file, or null when the file is absent or names none.</summary>
    public static Version? HighestGlibcxx(string? path) =>
        path is not null && File.Exists(path) && GlibcxxVersions(File.ReadAllBytes(path)) is { Count: > 0 } v ? v[^1] : null;

    public static string Glibcxx(Version v) => v.Build > 0 ? $"GLIBCXX_{v.Major}.{v.Minor}.{v.Build}" : $"GLIBCXX_{v.Major}.{v.Minor}";

    /// <summary>libstdc++.so.6 under a root directory ("/" for the host, the rootfs otherwise).</summary>
    public static string? LibStdCxxIn(string root) =>
        new[] { "usr/lib/x86_64-linux-gnu/libstdc++.so.6", "usr/lib64/libstdc++.so.6", "usr/lib/libstdc++.so.6" }
            .Select(p => Path.Combine(root, p)).FirstOrDefault(File.Exists);

    private static DoctorCheck DotnetSdk(RepoLayout repo)
    {
        var (code, stdout, stderr) = Discovery.Run(["dotnet", "--version"], TimeSpan.FromSeconds(30), ("DOTNET_NOLOGO", "1"));
        var dir = DotnetRootDir();
        return code == 0
            ? new DoctorCheck(".NET SDK", CheckStatus.Ok, $"{stdout.Trim()} in {dir ?? "?"}")
            : new DoctorCheck(".NET SDK", CheckStatus.Fail, $"`dotnet --version` in {repo.Root} failed: {FirstLine(stderr + stdout)}",
                "install the .NET SDK that global.json names (10.0, rollForward latestFeature)");
    }

    private static IEnumerable<DoctorCheck> Workers(RepoLayout repo)
    {
        // Each TorchSharp version builds into its own folder (bin/<config>/torchsharp-<version>/).
        var torchSharp = repo.TorchSharpWorkers();
        foreach (var build in torchSharp)
            yield return new DoctorCheck($"worker {RepoLayout.TorchSharpWorker} {build.PackageVersion}", CheckStatus.Ok,
                $"{Relative(repo, build.Dll)}, built {File.GetLastWriteTime(build.Dll):yyyy-MM-dd HH:mm}");
        foreach (var project in torchSharp.Count > 0 ? ["Conformance.Workers.PyTorch"] : new[] { "Conformance.Workers.PyTorch", RepoLayout.TorchSharpWorker })
        {
            var dll = repo.WorkerDll(project);
            if (dll is null) { yield return new DoctorCheck($"worker {project}", CheckStatus.Fail, "not built", "run `make build`"); continue; }
            var found = $"{Relative(repo, dll)}, built {File.GetLastWriteTime(dll):yyyy-MM-dd HH:mm}";
            var ts = Path.Combine(Path.GetDirectoryName(dll)!, "TorchSharp.dll");
            if (File.Exists(ts) && AssemblyName.GetAssemblyName(ts).Version is { } v) found += $", TorchSharp {v.Major}.{v.Minor}.{v.Build}";
            yield return new DoctorCheck($"worker {project}", CheckStatus.Ok, found);
        }
    }

    private static IEnumerable<DoctorCheck> Pythons(DoctorOptions options)
    {
        // /bin/python3 and /usr/bin/python3 are one file on a merged-/usr system: ask it once.
        var infos = options.Pythons.DistinctBy(RealPath).Select(p => (Name: $"python {p}", Info: Discovery.QueryPython(p, chroot: null))).ToList();
        var rootPython = Path.Combine(options.Rootfs, "usr/bin/python3");
        if (File.Exists(rootPython) && File.Exists(Path.Combine(options.Rootfs, Stamp)))
            infos.Add(("python (rootfs) /usr/bin/python3", Discovery.QueryPython("/usr/bin/python3", options.Rootfs)));
        foreach (var env in options.OtherRootfs)
            if (File.Exists(Path.Combine(env.Path!, "usr/bin/python3")) && File.Exists(Path.Combine(env.Path!, Stamp)))
                infos.Add(($"python (rootfs {env.Id}) /usr/bin/python3", Discovery.QueryPython("/usr/bin/python3", env.Path!)));
        foreach (var (name, i) in infos)
        {
            if (i.Problem is not null)
                yield return new DoctorCheck(name, CheckStatus.Warn, i.Problem, "remove it from CONFORMANCE_PYTHON / runtimes.json, or repair that interpreter");
            else if (i.Torch is null)
                // Discovery simply passes over it; a pyenv python3 first on PATH is the usual case.
                yield return new DoctorCheck(name, CheckStatus.Ok, $"python {i.Python}, no torch: not a runtime");
            else if (i.LibPython is null)
                yield return new DoctorCheck(name, CheckStatus.Warn, $"python {i.Python}, torch {i.Torch}, but no shared libpython to embed",
                    $"install libpython{MajorMinor(i.Python)} (the shared library) beside that interpreter");
            else
                yield return new DoctorCheck(name, CheckStatus.Ok, $"torch {i.Torch}, python {i.Python}, {i.LibPython}");
        }
        var runtimes = infos.Select(x => x.Info).Where(i => i.Torch is not null && i.LibPython is not null).Select(i => Runtime.MakeId(RuntimeKinds.PyTorch, i.Torch!)).Distinct().ToList();
        yield return runtimes.Count > 0
            ? new DoctorCheck("PyTorch runtimes", CheckStatus.Ok, string.Join(", ", runtimes))
            : new DoctorCheck("PyTorch runtimes", CheckStatus.Fail, "no interpreter can import torch with a shared libpython",
                "run `make host` (python3-torch) and `make rootfs` (PyTorch 2.6)");
    }

    private static IEnumerable<DoctorCheck> TorchSharpNative(RepoLayout repo, DoctorOptions options)
    {
        var lib = options.TorchSharpNative ?? FindTorchSharpNative(repo);
        var need = HighestGlibcxx(lib);
        var needSays = need is not null ? $"{Relative(repo, lib!)} needs {Glibcxx(need)}" : $"libLibTorchSharp.so not built (assuming it needs {Glibcxx(AssumedTorchSharpNeed)})";
        yield return need is not null
            ? new DoctorCheck("libLibTorchSharp.so", CheckStatus.Ok, needSays)
            : new DoctorCheck("libLibTorchSharp.so", CheckStatus.Fail, needSays, "run `make build`");
        need ??= AssumedTorchSharpNeed;

        var rootLib = LibStdCxxIn(options.Rootfs);
        var rootHas = HighestGlibcxx(rootLib);
        var rootOk = rootHas is not null && rootHas >= need;
        var hostHas = HighestGlibcxx(options.HostLibStdCxx);
        var hostSays = $"{options.HostLibStdCxx ?? "no libstdc++.so.6"} tops at {(hostHas is null ? "nothing" : Glibcxx(hostHas))}";
        if (hostHas is not null && hostHas >= need)
            yield return new DoctorCheck("TorchSharp on the host", CheckStatus.Ok, $"loads natively: {hostSays}, needs {Glibcxx(need)}");
        else
            // Expected on Debian 12: the rootfs is the way TorchSharp runs, so this is a failure only when the rootfs cannot take over.
            yield return new DoctorCheck("TorchSharp on the host", rootOk ? CheckStatus.Warn : CheckStatus.Fail,
                $"cannot load natively: {hostSays}, needs {Glibcxx(need)}" + (rootOk ? "; it runs in the rootfs" : ""),
                $"run TorchSharp in the Debian 13 rootfs: `make rootfs` then `make mount` (or use a distro with GCC 13+'s libstdc++)");

        yield return rootHas is null
            ? new DoctorCheck("TorchSharp in the rootfs", CheckStatus.Fail, $"no libstdc++.so.6 in {options.Rootfs}", "run `make rootfs`")
            : new DoctorCheck("TorchSharp in the rootfs", rootOk ? CheckStatus.Ok : CheckStatus.Fail,
                $"{rootLib} tops at {Glibcxx(rootHas)}, needs {Glibcxx(need)}",
                rootOk ? null : "rebuild the rootfs from a newer suite (CONFORMANCE_ROOTFS, scripts/rootfs.sh)");
    }

    private static DoctorCheck RootfsState(string name, string rootfs, string? wants)
    {
        if (!Directory.Exists(rootfs)) return new DoctorCheck(name, CheckStatus.Fail, $"{rootfs} does not exist", "run `make rootfs`");
        var stamp = Path.Combine(rootfs, Stamp);
        if (!File.Exists(stamp)) return new DoctorCheck(name, CheckStatus.Fail, $"{rootfs} exists but is not provisioned (no {Stamp})", "run `make rootfs`");
        var has = File.ReadAllText(stamp).Trim();
        if (wants is not null && wants != has)
            return new DoctorCheck(name, CheckStatus.Warn, $"{rootfs} provisioned with `{has}`, environments.json wants `{wants}`", "run `make rootfs` (tops it up)");
        return new DoctorCheck(name, CheckStatus.Ok, $"{rootfs} provisioned: {has}");
    }

    // environments.json's package list is what a provisioned stamp must say (scripts/rootfs.sh writes it).
    private static string? Packages(RepoLayout repo, string id) =>
        RuntimeEnvironment.Load(repo.EnvironmentsFile).FirstOrDefault(e => e.Id == id) is { } e ? string.Join(" ", e.Packages) : null;

    private static DoctorCheck RootfsMounts(RepoLayout repo, DoctorOptions options)
    {
        const string name = "rootfs mounts";
        var rootfs = options.Rootfs.TrimEnd('/');
        if (!File.Exists(Path.Combine(rootfs, Stamp)))
            return new DoctorCheck(name, CheckStatus.Fail, "no provisioned rootfs to mount into", "run `make rootfs`, then `make mount`");
        var mounted = MountPoints(options.MountsFile);
        var wanted = new List<(string What, string Where)> { ("proc", "/proc"), ("dev", "/dev"), ("sys", "/sys") };
        if (DotnetRootDir() is { } sdk) wanted.Add((".NET SDK", sdk));
        wanted.Add(("repo", RealPath(repo.Root)));
        var missing = wanted.Where(w => !mounted.Contains(rootfs + w.Where)).Select(w => $"{w.What} ({rootfs}{w.Where})").ToList();
        if (!File.Exists(Path.Combine(rootfs, "usr/bin/dotnet"))) missing.Add($"the dotnet link ({rootfs}/usr/bin/dotnet)");
        return missing.Count == 0
            ? new DoctorCheck(name, CheckStatus.Ok, $"proc, dev, sys, .NET SDK and {repo.Root} are mounted")
            : new DoctorCheck(name, CheckStatus.Fail, "missing: " + string.Join(", ", missing), $"run `make mount` in {repo.Root}");
    }

    private static IEnumerable<DoctorCheck> DiskSpace(RepoLayout repo, string rootfs)
    {
        // The rootfs needs ~2 GB when built; each build of the TorchSharp worker copies ~525 MB of libtorch.
        var places = new[] { ("rootfs", NearestExisting(rootfs)), ("repo", repo.Root) };
        foreach (var fs in places.GroupBy(p => MountOf(p.Item2)))
        {
            var free = new DriveInfo(fs.First().Item2).AvailableFreeSpace;
            var status = free < GiB ? CheckStatus.Fail : free < 4 * GiB ? CheckStatus.Warn : CheckStatus.Ok;
            yield return new DoctorCheck($"disk {fs.Key}", status, $"{free / (double)GiB:0.0} GiB free (holds the {string.Join(" and ", fs.Select(p => p.Item1))})",
                status == CheckStatus.Ok ? null : $"free space on {fs.Key}: the rootfs takes ~2 GB, a build ~1 GB");
        }
    }

    private static HashSet<string> MountPoints(string mountsFile)
    {
        if (!File.Exists(mountsFile)) return [];
        // /proc/mounts escapes space, tab, newline and backslash as octal (\040).
        static string Unescape(string s) => Regex.Replace(s, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());
        return File.ReadLines(mountsFile).Select(l => l.Split(' ')).Where(f => f.Length > 1).Select(f => Unescape(f[1])).ToHashSet();
    }

    private static string MountOf(string path)
    {
        var points = MountPoints("/proc/mounts");
        var p = RealPath(path);
        while (p.Length > 1 && !points.Contains(p)) p = Path.GetDirectoryName(p) ?? "/";
        return p;
    }

    // As scripts/rootfs.sh: dirname "$(readlink -f "$(command -v dotnet)")".
    private static string? DotnetRootDir()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists);
        return onPath is null ? null : Path.GetDirectoryName(RealPath(onPath));
    }

    // readlink -f: resolves links in every component; a loop stops after 40 hops, as the kernel does.
    private static string RealPath(string path) => RealPath(path, 40);

    private static string RealPath(string path, int hops)
    {
        var full = Path.GetFullPath(path);
        var parent = Path.GetDirectoryName(full);
        var real = parent is null ? full : Path.Combine(RealPath(parent, hops), Path.GetFileName(full));
        var target = new FileInfo(real).LinkTarget;
        return target is null || hops == 0 ? real : RealPath(Path.Combine(Path.GetDirectoryName(real) ?? "/", target), hops - 1);
    }

    private static string NearestExisting(string path)
    {
        var p = Path.GetFullPath(path);
        while (!Directory.Exists(p)) p = Path.GetDirectoryName(p) ?? "/";
        return p;
    }

    private static string? FindTorchSharpNative(RepoLayout repo)
    {
        var bin = Path.Combine(repo.Root, "harness", "Conformance.Workers.TorchSharp", "bin");
        return Directory.Exists(bin)
            ? Directory.EnumerateFiles(bin, "libLibTorchSharp.so", SearchOption.AllDirectories).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
            : null;
    }

    private static string Relative(RepoLayout repo, string path) => Path.GetRelativePath(repo.Root, path);

    private static string MajorMinor(string? version) => version?.Split('.') is [var a, var b, ..] ? $"{a}.{b}" : "3";

    private static string FirstLine(string s) => s.Trim().Split('\n')[0].Trim();
}
