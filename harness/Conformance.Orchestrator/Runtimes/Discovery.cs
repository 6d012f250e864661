using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Runtimes;

/// <summary>
/// Finds the runtimes this machine can run, never assuming <c>python3</c>:
/// <list type="bullet">
/// <item>each candidate interpreter is asked whether it has torch and where its libpython is;</item>
/// <item>the Debian 13 rootfs (scripts/rootfs.sh) contributes its PyTorch and, where the host's
/// libstdc++ is too old for TorchSharp (GLIBCXX_3.4.32, GCC 13), the TorchSharp runtimes;</item>
/// <item>every built TorchSharp worker (one folder per TorchSharp version) is one runtime;</item>
/// <item><c>runtimes.json</c>, the file named by CONFORMANCE_RUNTIMES, and CONFORMANCE_PYTHON
/// (interpreters separated by ':') override discovery and add more runtimes.</item>
/// </list>
/// Runtimes listed as <c>expected</c> but not found come back as missing, with the reason.
/// </summary>
public sealed class Discovery(RepoLayout repo)
{
    public const string DefaultRootfs = "/var/cache/torch-conformance/rootfs-trixie";
    private const string TorchSharpNeeds = "GLIBCXX_3.4.32";
    private readonly List<string> _notes = [];
    private readonly List<Runtime> _deviceRuntimes = [];

    /// <summary>What discovery tried, for the report and for missing-runtime messages.</summary>
    public IReadOnlyList<string> Notes => _notes;

    public IReadOnlyList<Runtime> Discover()
    {
        var config = RuntimesConfig.Load(repo.RuntimesFile, Environment.GetEnvironmentVariable("CONFORMANCE_RUNTIMES"));
        var found = new Dictionary<string, Runtime>();
        void Add(Runtime r)
        {
            if (found.TryGetValue(r.Id, out var had) && had.Available) { _notes.Add($"{r.Id}: already found at {had.Where}; ignoring {r.Where}"); return; }
            found[r.Id] = r;
        }

        var trixie = Environment.GetEnvironmentVariable("CONFORMANCE_ROOTFS") ?? config.Rootfs;
        var environments = RuntimeEnvironment.Load(repo.EnvironmentsFile, trixie);

        // 1. Explicit interpreters first: they win over what discovery would pick. Then the host's, as
        //    environments.json declares them, then any other python3 on PATH.
        var explicitPythons = (Environment.GetEnvironmentVariable("CONFORMANCE_PYTHON") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(config.Pythons);
        var hostPythons = environments.Where(e => e.Kind == "host")
            .SelectMany(e => e.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Python is not null).Select(r => r.Python!));
        foreach (var py in explicitPythons.Concat(hostPythons).Concat(HostPythonCandidates()).Distinct())
            if (ProbePython(py, chroot: null) is { } r) Add(r);

        // 2. Every rootfs environments.json declares: its interpreters, and TorchSharp where it is listed.
        if (environments.Count == 0) environments = [new RuntimeEnvironment("trixie", "rootfs", "trixie", trixie ?? DefaultRootfs, [],
            [new EnvironmentRuntime(RuntimeKinds.PyTorch, "/usr/bin/python3"), new EnvironmentRuntime(RuntimeKinds.TorchSharp, null)])];
        var torchSharpDone = false;
        foreach (var env in environments.Where(e => e.IsRootfs && e.Path is not null))
        {
            var problem = RootfsProblem(env.Path!);
            if (problem is not null) _notes.Add($"{env.Id}: {problem}");
            foreach (var rt in env.Runtimes)
            {
                if (rt.Kind == RuntimeKinds.PyTorch && problem is null && ProbePython(rt.Python ?? "/usr/bin/python3", chroot: env.Path) is { } r) Add(r);
                if (rt.Kind == RuntimeKinds.TorchSharp && !torchSharpDone)
                {
                    // 3. TorchSharp, one runtime per built version: natively where libstdc++ allows it, else in this rootfs.
                    foreach (var ts in TorchSharpRuntimes(env.Path!, problem)) Add(ts);
                    torchSharpDone = true;
                }
            }
        }

        // The device runtimes the interpreters reported (a CUDA torch with a GPU node), after their CPU twins.
        foreach (var r in _deviceRuntimes) Add(r);

        // 4. Declared runtimes replace discovered ones with the same id.
        foreach (var r in config.Runtimes) found[r.Id] = r;

        foreach (var id in config.Expected.Where(id => !found.ContainsKey(id)))
            found[id] = Runtime.Missing(id, $"not found on this machine. Discovery tried: {string.Join("; ", _notes)}");
        return found.Values.OrderBy(r => r.Kind).ThenBy(r => Runtime.ParseVersion(r.Version)).ThenBy(r => r.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The device runtimes this machine cannot have: for each available TorchSharp runtime, its CUDA
    /// twin (<c>torchsharp-0.107-cuda</c>), since only TorchSharp's CPU packages are served here. A
    /// TorchSharp worker says which devices it has in its hello (<c>devices</c>); these cells wait for
    /// one that says <c>cuda</c>.
    /// </summary>
    public static IReadOnlyList<Runtime> AwaitingDevice(IReadOnlyList<Runtime> runtimes) =>
        runtimes.Where(r => r.Kind == RuntimeKinds.TorchSharp && r.Available && r.Device == Runtime.Cpu).Select(Runtime.TorchSharpCuda).ToList();

    internal static IEnumerable<string> HostPythonCandidates()
    {
        yield return "/usr/bin/python3";
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, "python3");
            if (File.Exists(p)) yield return p;
        }
    }

    // Asks the interpreter itself; torch's version is read from torch/version.py, not imported.
    /// <summary>The NVIDIA driver's control node: present where a GPU can be used.</summary>
    internal const string GpuNode = "/dev/nvidiactl";

    private const string ProbeScript = """
import importlib.util, json, os, re, sys, sysconfig
r = {"python": "%d.%d.%d" % sys.version_info[:3], "torch": None, "libpython": None}
so = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
dirs = [sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LIBPL"), os.path.join(sys.base_prefix, "lib")]
for d in dirs:
    if d and ".so" in so and os.path.exists(os.path.join(d, so)):
        r["libpython"] = os.path.join(d, so); break
spec = importlib.util.find_spec("torch")
if spec and spec.submodule_search_locations:
    vf = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", open(vf).read()) if os.path.exists(vf) else None
    r["torch"] = m.group(1) if m else "unknown"
    c = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)", open(vf).read(), re.M) if os.path.exists(vf) else None
    r["torch_cuda"] = c.group(1) if c else None  # the CUDA version torch was built for; None on a CPU build
r["gpu"] = os.path.exists(sys.argv[1] if len(sys.argv) > 1 else "/dev/nvidiactl")
print(json.dumps(r))
""";

    /// <summary>What an interpreter says about itself; <see cref="Problem"/> is set when it could not be asked.</summary>
    internal sealed record PythonInfo(string Where, string? Python, string? Torch, string? LibPython, string? Problem)
    {
        /// <summary>The CUDA version torch was built for (torch/version.py), when a GPU device node exists too; else null.</summary>
        public string? Cuda { get; init; }
    }

    /// <summary>Asks one interpreter (on the host, or inside <paramref name="chroot"/>); shared with the doctor.</summary>
    internal static PythonInfo QueryPython(string python, string? chroot, string gpuNode = GpuNode)
    {
        var where = chroot is null ? $"host {python}" : $"rootfs {chroot} {python}";
        var argv = chroot is null ? new[] { python, "-c", ProbeScript, gpuNode } : new[] { "chroot", chroot, python, "-c", ProbeScript, gpuNode };
        var (code, stdout, stderr) = Run(argv, TimeSpan.FromSeconds(30));
        if (code != 0) return new PythonInfo(where, null, null, null, $"probe exited {code}: {Last(stderr)}");
        JsonNode? info;
        try { info = JsonNode.Parse(stdout.Trim().Split('\n').Last()); }
        catch (JsonException) { return new PythonInfo(where, null, null, null, $"probe printed no JSON: {Last(stdout)}"); }
        return new PythonInfo(where, info?["python"]?.GetValue<string>(), info?["torch"]?.GetValue<string>(), info?["libpython"]?.GetValue<string>(), null)
        {
            Cuda = info?["gpu"]?.GetValue<bool>() == true ? info["torch_cuda"]?.GetValue<string>() : null,
        };
    }

    private Runtime? ProbePython(string python, string? chroot)
    {
        var info = QueryPython(python, chroot);
        var (where, pyVersion, torch, libpython, problem) = info;
        if (problem is not null) { _notes.Add($"{where}: {problem}"); return null; }
        if (torch is null) { _notes.Add($"{where}: python {pyVersion} cannot import torch"); return null; }
        if (libpython is null) { _notes.Add($"{where}: torch {torch} but no shared libpython to embed"); return null; }
        var dll = repo.WorkerDll("Conformance.Workers.PyTorch");
        var id = Runtime.MakeId(RuntimeKinds.PyTorch, torch);
        if (dll is null) return Runtime.Missing(id, "the PyTorch worker is not built: run `make build`");
        _notes.Add($"{where}: torch {torch}, python {pyVersion} -> {id}");
        var worker = new List<string>();
        if (chroot is not null) worker.AddRange(["chroot", chroot]);
        worker.AddRange(["dotnet", dll, "--python-dll", libpython, "--python-path", repo.PythonPackageDir]);
        var cpu = new Runtime(id, RuntimeKinds.PyTorch, torch, "cpu", new Launch(worker.ToArray()), Where: where);
        if (info.Cuda is { } cudaVersion)
        {
            // A CUDA build of torch with a GPU here: the same worker, asked to act on cuda, is one more runtime.
            var cuda = cpu with { Id = Runtime.MakeId(RuntimeKinds.PyTorch, torch, "cuda"), Device = "cuda" };
            _notes.Add($"{where}: torch {torch} built for CUDA {cudaVersion}, and /dev/nvidiactl exists -> {cuda.Id}");
            _deviceRuntimes.Add(cuda);
        }
        return cpu;
    }

    /// <summary>
    /// One runtime per built TorchSharp worker (<see cref="RepoLayout.TorchSharpWorkers"/>), its version
    /// the package version the build restored (from its folder name). Builds whose ids collide, say
    /// 0.107.0 and 0.107.1 (both <c>torchsharp-0.107</c>), become one missing runtime that names them.
    /// </summary>
    public IReadOnlyList<Runtime> TorchSharpRuntimes(string rootfs, string? rootfsProblem)
    {
        var builds = repo.TorchSharpWorkers();
        if (builds.Count == 0) { _notes.Add("TorchSharp worker is not built: run `make build`"); return []; }
        var hostLib = HostLibStdCxx();
        var native = hostLib is not null && FileContains(hostLib, TorchSharpNeeds);
        var why = $"host libstdc++ ({hostLib ?? "not found"}) lacks {TorchSharpNeeds}, which libLibTorchSharp.so needs";
        if (!native && rootfsProblem is null) _notes.Add($"{why}: TorchSharp runs in the rootfs");
        var runtimes = new List<Runtime>();
        foreach (var same in builds.Where(IsNuGetVersion).GroupBy(b => Runtime.MakeId(RuntimeKinds.TorchSharp, b.PackageVersion)))
        {
            if (same.Count() > 1)
            {
                var folders = string.Join(", ", same.Select(b => Path.GetRelativePath(repo.Root, b.Folder)));
                runtimes.Add(Runtime.Missing(same.Key, $"{same.Count()} TorchSharp worker builds share the id {same.Key}: {folders}. " +
                                                       "Release versions are told apart by major.minor only: delete all but one of these folders"));
                continue;
            }
            var b = same.Single();
            NoteAssemblyVersion(b);
            if (native)
                runtimes.Add(new Runtime(same.Key, RuntimeKinds.TorchSharp, b.PackageVersion, "cpu", new Launch("dotnet", b.Dll), Where: "host"));
            else if (rootfsProblem is not null)
                runtimes.Add(Runtime.Missing(same.Key, $"{why}; and the rootfs is unusable: {rootfsProblem}") with { Version = b.PackageVersion });
            else
                runtimes.Add(new Runtime(same.Key, RuntimeKinds.TorchSharp, b.PackageVersion, "cpu", new Launch("chroot", rootfs, "dotnet", b.Dll), Where: $"rootfs {rootfs}"));
        }
        return runtimes;
    }

    // The version is part of the runtime id, which cell names and known-failure globs must parse.
    private bool IsNuGetVersion(TorchSharpBuild b)
    {
        if (System.Text.RegularExpressions.Regex.IsMatch(b.PackageVersion, @"^\d+(\.\d+){1,3}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")) return true;
        _notes.Add($"{Path.GetRelativePath(repo.Root, b.Folder)}: ignored, '{b.PackageVersion}' is not a NuGet version");
        return false;
    }

    // A re-packed or locally built package can carry a TorchSharp.dll of another version: say so.
    private void NoteAssemblyVersion(TorchSharpBuild b)
    {
        var tsDll = Path.Combine(Path.GetDirectoryName(b.Dll)!, "TorchSharp.dll");
        var inside = File.Exists(tsDll) ? FileVersionInfo.GetVersionInfo(tsDll).ProductVersion?.Split('+')[0] : null;
        if (inside is not null && inside != b.PackageVersion)
            _notes.Add($"{Path.GetRelativePath(repo.Root, b.Folder)}: package {b.PackageVersion}, but its TorchSharp.dll says {inside}");
    }

    /// <summary>Why the rootfs cannot run workers for this repository, or null when it can.</summary>
    private string? RootfsProblem(string rootfs)
    {
        if (!File.Exists(Path.Combine(rootfs, ".conformance-provisioned")))
            return $"no provisioned rootfs at {rootfs}: run `make rootfs`";
        bool Mounted() => File.Exists(rootfs + Path.Combine(repo.Root, "Conformance.sln")) && Directory.Exists(Path.Combine(rootfs, "proc", "self"))
                          && File.Exists(Path.Combine(rootfs, "usr", "bin", "dotnet"));
        if (Mounted()) return null;
        // Mounting is idempotent; do it for a developer who runs `dotnet test` straight after a reboot.
        var script = Path.Combine(repo.Root, "scripts", "rootfs.sh");
        var (code, _, err) = Run(["bash", script, "mount", repo.Root], TimeSpan.FromSeconds(60), ("CONFORMANCE_ROOTFS", rootfs));
        return Mounted() ? null : $"rootfs {rootfs} is not mounted for {repo.Root} (scripts/rootfs.sh mount exited {code}: {Last(err)}): run `make mount`";
    }

    private static string? HostLibStdCxx() =>
        new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6" }.FirstOrDefault(File.Exists);

    private static bool FileContains(string path, string needle)
    {
        var bytes = File.ReadAllBytes(path);
        return bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle)) >= 0;
    }

    private static string Last(string s)
    {
        var lines = s.Trim().Split('\n');
        return lines.Length == 0 ? "" : lines[^1].Trim();
    }

    internal static (int Code, string Stdout, string Stderr) Run(string[] argv, TimeSpan timeout, params (string Key, string Value)[] env)
    {
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout)) { p.Kill(true); return (-1, "", $"timed out after {timeout.TotalSeconds} s"); }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, "", $"{argv[0]}: {e.Message}");
        }
    }
}
