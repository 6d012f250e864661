namespace Conformance.Orchestrator.Runtimes;

/// <summary>
/// A runtime: (kind, version, device, how to launch its worker). Its id begins
/// <c>pytorch-&lt;major&gt;.&lt;minor&gt;</c> or <c>torchsharp-&lt;major&gt;.&lt;minor&gt;</c>, or for a TorchSharp
/// pre-release <c>torchsharp-&lt;version&gt;</c> (<see cref="MakeId"/>). A runtime that
/// discovery expected but could not find has no launch and says why in <see cref="MissingReason"/>.
/// </summary>
public sealed record Runtime(
    string Id,
    string Kind,
    string Version,
    string Device,
    Launch? Launch,
    string? MissingReason = null,
    string Where = "host")
{
    public bool Available => Launch is not null && MissingReason is null;

    /// <summary>
    /// The .NET library a TorchSharp runtime reads and writes state-dict routes with (cases.json's
    /// <c>libraries</c>), or null for TorchSharp itself and for PyTorch. Same worker, same process kind;
    /// the id says it: <c>torchsharp-0.107+pybridge</c>, <c>torchsharp-0.107+torchcheckpoints-cuda</c>.
    /// </summary>
    public string? Library { get; init; }

    /// <summary>This TorchSharp runtime reading and writing state dicts with <paramref name="library"/>: <c>kind-version+library[-device]</c>.</summary>
    public Runtime WithLibrary(string library)
    {
        var bare = WithoutDevice(Id);
        return this with { Id = Device == Cpu ? $"{bare}+{library}" : $"{bare}+{library}-{Device}", Library = library };
    }

    private static readonly System.Text.RegularExpressions.Regex LibrarySuffix =
        new(@"^[a-z]+-[^+@]*\+([a-z0-9]+)", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>The library a runtime id (or golden producer id) names: <c>torchsharp-0.107+pybridge@golden</c> → <c>pybridge</c>; none → null.</summary>
    public static string? LibraryOf(string id) => LibrarySuffix.Match(id) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The id without its library: <c>torchsharp-0.107+pybridge-cuda@golden</c> → <c>torchsharp-0.107-cuda@golden</c>.</summary>
    public static string WithoutLibrary(string id) => LibraryOf(id) is { } library ? id.Replace("+" + library, "", StringComparison.Ordinal) : id;

    /// <summary>
    /// <c>kind-major.minor</c>; a TorchSharp pre-release (NuGet SemVer, <c>0.108.0-preview.1</c>) keeps its
    /// whole version, less build metadata, so it is a runtime apart from the release it precedes and
    /// from the current one: <c>torchsharp-0.108.0-preview.1</c>.
    /// </summary>
    public static string MakeId(string kind, string version)
    {
        var core = version.Split('+')[0];
        if (kind == RuntimeKinds.TorchSharp && core.IndexOf('-') > 0) return $"{kind}-{core}";
        var parts = version.Split('.', '+', '-', 'a', 'b', 'r');
        return parts.Length >= 2 ? $"{kind}-{parts[0]}.{parts[1]}" : $"{kind}-{version}";
    }

    /// <summary>The leading numbers of a version ("2.6.0+debian", "1.13.0a0", "0.107.1-repack.1"), for ordering.</summary>
    public static Version ParseVersion(string version)
    {
        var numbers = System.Text.RegularExpressions.Regex.Match(version, @"^\d+(\.\d+){0,3}").Value;
        var parts = numbers.Length == 0 ? [0] : numbers.Split('.').Select(int.Parse).ToArray();
        return new Version(parts[0], parts.Length > 1 ? parts[1] : 0, parts.Length > 2 ? parts[2] : 0, parts.Length > 3 ? parts[3] : 0);
    }

    public static Runtime Missing(string id, string reason)
    {
        var device = DeviceOf(id);
        var plain = WithoutDevice(id);
        var dash = plain.IndexOf('-');
        return new Runtime(id, dash > 0 ? plain[..dash] : plain, dash > 0 ? plain[(dash + 1)..] : "", device, null, reason, "none");
    }

    public const string Cpu = "cpu";

    /// <summary>Why every TorchSharp CUDA cell is skipped here; <see cref="AwaitsDevice"/> runtimes say it, and a skip that says it never fails a run.</summary>
    public const string NoTorchSharpCuda = "no TorchSharp CUDA package is available (libtorch-cuda-* and TorchSharp-cuda-* are not served to this project; TorchSharp runs on the CPU here)";

    /// <summary>
    /// A runtime that needs a device backend this machine cannot have (TorchSharp on CUDA): its cells
    /// are planned and skipped with <see cref="MissingReason"/>, even under CONFORMANCE_REQUIRE_ALL=1,
    /// and the summary names them. It is not one of the machine's runtimes (<see cref="Discovery.AwaitingDevice"/>).
    /// </summary>
    public bool AwaitsDevice { get; init; }

    /// <summary>The CUDA twin of a TorchSharp runtime, awaiting a TorchSharp CUDA package.</summary>
    public static Runtime TorchSharpCuda(Runtime cpu) =>
        new(MakeId(RuntimeKinds.TorchSharp, cpu.Version, "cuda"), RuntimeKinds.TorchSharp, cpu.Version, "cuda", null, NoTorchSharpCuda, "none") { AwaitsDevice = true };

    /// <summary>
    /// <c>kind-version</c>, then <c>-device</c> when the device is not the CPU: <c>pytorch-2.11-cuda</c>,
    /// <c>torchsharp-0.107-cuda</c>; gpu-check's simulated device is <c>pytorch-2.6-cuda-cpu-simulated</c>.
    /// </summary>
    public static string MakeId(string kind, string version, string device) =>
        device == Cpu ? MakeId(kind, version) : $"{MakeId(kind, version)}-{device}";

    private static readonly System.Text.RegularExpressions.Regex DeviceSuffix =
        new(@"^[a-z]+-[0-9][^-@]*(?:-(?:preview|rc|beta|alpha|repack)[^-@]*)*-(cuda[^@]*)(?:@golden)?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>The device a runtime id (or a golden producer id) names: <c>pytorch-2.11-cuda@golden</c> → <c>cuda</c>; no suffix → <c>cpu</c>. Twin: judge.device_of.</summary>
    public static string DeviceOf(string id) => DeviceSuffix.Match(id) is { Success: true } m ? m.Groups[1].Value : Cpu;

    /// <summary>The id without its device: <c>pytorch-2.11-cuda@golden</c> → <c>pytorch-2.11@golden</c>.</summary>
    public static string WithoutDevice(string id)
    {
        var device = DeviceOf(id);
        if (device == Cpu) return id;
        var golden = id.EndsWith("@golden", StringComparison.Ordinal);
        var bare = golden ? id[..^"@golden".Length] : id;
        return bare[..^(device.Length + 1)] + (golden ? "@golden" : "");
    }

    /// <summary>Whether a device id names a GPU (or gpu-check's simulation of one).</summary>
    public static bool IsAccelerator(string device) => device != Cpu && device.Length > 0;

    public override string ToString() => Id;
}
