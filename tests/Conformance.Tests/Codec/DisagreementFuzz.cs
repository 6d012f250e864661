using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using TorchCheckpoints;
using Xunit.Abstractions;

namespace Conformance.Tests.Codec;

/// <summary>
/// Mutations aimed at the ways torch.load and a zip or pickle reader can read one file differently: entry names
/// equal but for case, a second end record after the directory, version records, stale CRCs,
/// conj/neg metadata and the values under it, storages on the meta device, nesting made through the
/// memo. Each starts from a real checkpoint (a seed of <see cref="CodecFuzzSpecs"/>).
/// </summary>
internal static class DisagreementMutations
{
    public const int FirstKind = 12;
    public const int Kinds = 7;

    private static readonly string[] Versions = { "0", "1", "2\n", "3", "3\n", "4\n", "10\n", "11\n", "99\n", "-1", " 3", "3abc", "", "+3", "03" };

    private static readonly byte[][] Metadata =
    {
        Dict(("conj", 0x88)), Dict(("neg", 0x88)), Dict(("conj", 0x89)), Dict(("neg", (byte)'N')), Dict(("foo", 0x88)),
        Dict(("conj", 0x88), ("neg", 0x88)), Dict(), "N"u8.ToArray(), new byte[] { 0x89 }, "K\u0001"u8.ToArray(),
        Dict(("neg", (byte)'K'), ("neg", 0x88)), "X\u0001\u0000\u0000\u0000x"u8.ToArray(),
    };

    /// <summary>A pickled dict of str keys to one-byte values (NEWTRUE, NEWFALSE, NONE; 'K' is BININT1 1).</summary>
    private static byte[] Dict(params (string Key, int Value)[] items)
    {
        var bytes = new List<byte> { (byte)'}' };
        foreach (var (key, value) in items)
        {
            bytes.Add((byte)'X');
            bytes.AddRange(BitConverter.GetBytes(key.Length));
            bytes.AddRange(Encoding.ASCII.GetBytes(key));
            bytes.Add((byte)value);
            if (value == 'K') bytes.Add(1);
            bytes.Add((byte)'s');
        }
        return bytes.ToArray();
    }

    public static byte[] Mutate(int kind, byte[] seed, Random rng)
    {
        var entries = RawZip.Entries(seed);
        int pkl = entries.FindIndex(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        var folder = entries[pkl].Name[..^"data.pkl".Length];
        var pickle = entries[pkl].Data;
        switch (kind - FirstKind)
        {
            case 0: // an entry's name in another case: beside it (with other content), or in its place
            {
                int at = rng.Next(entries.Count);
                var (name, data) = entries[at];
                var record = name[folder.Length..];
                var changed = new StringBuilder(folder);
                foreach (char c in record)
                    changed.Append(char.IsAsciiLetter(c) && rng.Next(2) == 0 ? (char)(c ^ 0x20) : c);
                var twinName = changed.ToString();
                if (twinName == name && record.Any(char.IsAsciiLetter))
                    twinName = folder + record.ToUpperInvariant();
                byte[] twin = record switch
                {
                    "byteorder" => "big"u8.ToArray(),
                    "version" or ".data/version" => Encoding.ASCII.GetBytes(Versions[rng.Next(Versions.Length)]),
                    "data.pkl" => CodecSpecs.Pickle(new PyDict { { "epoch", 3L } }),
                    _ => Noise(data.Length, rng),
                };
                if (rng.Next(3) == 0)
                    entries[at] = (twinName, record == "byteorder" ? twin : data);
                else
                    entries.Insert(rng.Next(2) == 0 ? at : at + 1, (twinName, twin));
                return RawZip.Of(entries).Build();
            }
            case 1: // a second archive's end record in the first one's comment
            {
                var other = entries.ToList();
                int at = rng.Next(other.Count);
                other[at] = (other[at].Name, other[at].Name.EndsWith("/data.pkl", StringComparison.Ordinal)
                    ? CodecSpecs.Pickle(new PyDict { { "epoch", 3L } }) : Noise(other[at].Data.Length, rng));
                return rng.Next(2) == 0
                    ? RawZip.WithHiddenEnd(RawZip.Of(entries), RawZip.Of(other), rng.Next(3))
                    : RawZip.WithHiddenEnd(RawZip.Of(other), RawZip.Of(entries), rng.Next(3));
            }
            case 2: // the version records
            {
                var value = Encoding.ASCII.GetBytes(Versions[rng.Next(Versions.Length)]);
                int at = entries.FindIndex(e => e.Name == folder + "version");
                if (rng.Next(3) == 0) entries.Add((folder + ".data/version", value));
                else if (at >= 0) entries[at] = (entries[at].Name, value);
                else entries.Add((folder + "version", value));
                return RawZip.Of(entries).Build();
            }
            case 3: // a stale CRC on one entry
            {
                int at = rng.Next(entries.Count);
                var zip = new RawZip();
                for (int i = 0; i < entries.Count; i++)
                    zip.Add(entries[i].Name, entries[i].Data, crc: i == at ? Crc32.HashToUInt32(entries[i].Data) ^ (1u << rng.Next(32)) : null);
                return zip.Build();
            }
            case 4: // conj/neg metadata on a tensor, or other values under the bits already there
            {
                var hooks = HookEnds(pickle);
                if (hooks.Count > 0 && (rng.Next(2) == 0 || !Encoding.Latin1.GetString(pickle).Contains("neg")))
                {
                    int end = hooks[rng.Next(hooks.Count)];
                    pickle = pickle[..end].Concat(Metadata[rng.Next(Metadata.Length)]).Concat(pickle[end..]).ToArray();
                    entries[pkl] = (entries[pkl].Name, pickle);
                }
                else
                {
                    var records = Enumerable.Range(0, entries.Count).Where(i => entries[i].Name.Contains("/data/", StringComparison.Ordinal)).ToList();
                    if (records.Count > 0)
                    {
                        int at = records[rng.Next(records.Count)];
                        entries[at] = (entries[at].Name, SpecialValues(entries[at].Data.Length, rng));
                    }
                }
                return RawZip.Of(entries).Build();
            }
            case 5: // a storage on the meta device
            {
                var cpu = "X\u0003\u0000\u0000\u0000cpu"u8.ToArray();
                int at = pickle.AsSpan().IndexOf(cpu);
                if (at >= 0)
                    entries[pkl] = (entries[pkl].Name, pickle[..at].Concat("X\u0004\u0000\u0000\u0000meta"u8.ToArray()).Concat(pickle[(at + cpu.Length)..]).ToArray());
                if (rng.Next(3) == 0)
                    entries.RemoveAll(e => e.Name == folder + "data/0");
                return RawZip.Of(entries).Build();
            }
            default: // lists nested through the memo, or a plain deep nest, before the real body
            {
                int depth = 1 + rng.Next(3000);
                var nest = new List<byte>();
                if (rng.Next(2) == 0)
                {
                    nest.Add((byte)']');
                    for (int i = 0; i < depth; i++) nest.AddRange(new byte[] { (byte)']', (byte)'r', 0xf0, 0xff, 0, 0, (byte)'a', (byte)'j', 0xf0, 0xff, 0, 0 });
                }
                else
                {
                    nest.AddRange(Enumerable.Repeat((byte)']', depth));
                    nest.AddRange(Enumerable.Repeat((byte)'a', depth - 1));
                }
                entries[pkl] = (entries[pkl].Name, pickle[..2].Concat(nest).Concat(pickle[2..]).ToArray());
                return RawZip.Of(entries).Build();
            }
        }
    }

    /// <summary>Where a _rebuild_tensor_v2 argument tuple ends: after its hooks, <c>OrderedDict()</c>
    /// (REDUCE of an EMPTY_TUPLE, then BINPUT), the TUPLE that closes it.</summary>
    private static List<int> HookEnds(byte[] p)
    {
        var ends = new List<int>();
        for (int i = 0; i + 4 < p.Length; i++)
        {
            if (p[i] != (byte)')' || p[i + 1] != (byte)'R') continue;
            int j = i + 2;
            if (p[j] == (byte)'q') j += 2;
            else if (p[j] == (byte)'r') j += 5;
            else if (p[j] == 0x94) j += 1;
            if (j < p.Length && p[j] == (byte)'t') ends.Add(j);
        }
        return ends;
    }

    private static byte[] Noise(int length, Random rng)
    {
        var b = new byte[length];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>Bytes of zeros, negative zeros, NaNs, infinities and ordinary values, in 2-, 4- and 8-byte patterns.</summary>
    private static byte[] SpecialValues(int length, Random rng)
    {
        var b = Noise(length, rng);
        int width = new[] { 2, 4, 8 }[rng.Next(3)];
        for (int at = 0; at + width <= length; at += width)
        {
            var span = b.AsSpan(at, width);
            switch (rng.Next(6))
            {
                case 0: span.Clear(); break;
                case 1: span.Clear(); span[^1] = 0x80; break;
                case 2: span.Fill(0xff); span[^1] = 0x7f; break; // a NaN
                case 3: span.Clear(); span[^1] = 0x7f; span[^2] = width == 2 ? (byte)0x80 : (byte)0xf0; break;
                default: break;
            }
        }
        return b;
    }
}

/// <summary>torch.load(weights_only=True) of PyTorch 2.14 (the forky rootfs), in one long-lived process,
/// answering with the same fingerprint <see cref="CodecFuzzSpecs.Fingerprint"/> makes.</summary>
internal sealed class TorchReference : IDisposable
{
    public const string Rootfs = "/var/cache/torch-conformance/rootfs-forky";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private const string Script = """
        import collections, hashlib, json, struct, sys, warnings
        warnings.filterwarnings("ignore")
        import torch
        def fp(v, out):
            if v is None: out.append("None;")
            elif isinstance(v, bool): out.append(f"Boolean={v};")
            elif isinstance(v, int): out.append(f"Int64={v};")
            elif isinstance(v, float): out.append(f"{struct.unpack('<q', struct.pack('<d', v))[0]}d")
            elif isinstance(v, str): out.append(f"String={v};")
            elif isinstance(v, bytes): out.append("b'" + v.hex().upper() + "'")
            elif isinstance(v, torch.Tensor):
                shape = "x".join(str(s) for s in v.shape)
                if v.device.type != "cpu":
                    out.append(f"T<{v.dtype},{shape},{v.requires_grad},ON-{v.device.type}>"); return
                t = v.detach().resolve_conj().resolve_neg().contiguous()
                raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
                out.append(f"T<{v.dtype},{shape},{v.requires_grad},{hashlib.sha256(raw).hexdigest().upper()}>")
            elif isinstance(v, dict):
                out.append("OD{" if isinstance(v, collections.OrderedDict) else "{")
                for k, x in v.items():
                    out.append(f"'{k}'" if isinstance(k, str) else str(k)); out.append(":"); fp(x, out)
                out.append("}")
            elif isinstance(v, tuple):
                out.append("(")
                for x in v: fp(x, out)
                out.append(")")
            elif isinstance(v, list):
                out.append("[")
                for x in v: fp(x, out)
                out.append("]")
            else: out.append(f"{type(v).__name__}={v!r};")
        print(json.dumps({"torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            try:
                out = []
                fp(torch.load(line.rstrip("\n"), weights_only=True), out)
                print(json.dumps({"ok": "".join(out)}), flush=True)
            except BaseException as e:
                print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}), flush=True)
        """;

    private Process? _process;

    public string Version { get; private set; } = "";

    /// <summary>Null when the rootfs has no python3 with torch.</summary>
    public static TorchReference? TryStart()
    {
        if (!File.Exists(Path.Combine(Rootfs, "usr/bin/python3")))
            return null;
        var reference = new TorchReference();
        return reference.Start() ? reference : null;
    }

    /// <summary>A folder inside the rootfs, and the same folder as paths inside it read.</summary>
    public static (string Outside, string Inside) Folder(string name)
    {
        var inside = $"/tmp/{name}-{Environment.ProcessId}";
        var outside = Rootfs + inside;
        Directory.CreateDirectory(outside);
        return (outside, inside);
    }

    private bool Start()
    {
        _process?.Kill(true);
        var psi = new ProcessStartInfo("chroot") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Rootfs, "/usr/bin/python3", "-u", "-c", Script }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        var hello = ReadLine();
        if (hello is null || JsonNode.Parse(hello)?["torch"] is not { } version)
            return false;
        Version = (string)version!;
        return true;
    }

    private string? ReadLine()
    {
        var task = _process!.StandardOutput.ReadLineAsync();
        return task.Wait(Timeout) ? task.Result : null;
    }

    /// <summary>torch's reading of the file at <paramref name="inside"/> (a path inside the rootfs):
    /// accepted with a fingerprint, or refused with the error's first line.</summary>
    public (bool Accepted, string Answer) Read(string inside)
    {
        _process!.StandardInput.WriteLine(inside);
        _process.StandardInput.Flush();
        var line = ReadLine();
        if (line is null)
        {
            var why = _process.HasExited ? $"torch's process died (exit {_process.ExitCode})" : $"torch gave no answer in {Timeout.TotalSeconds} s";
            Start();
            return (false, why);
        }
        var answer = JsonNode.Parse(line)!;
        return answer["ok"] is { } ok ? (true, (string)ok!) : (false, (string)answer["error"]!);
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5000)) _process.Kill(true);
        }
        _process?.Dispose();
    }
}

/// <summary>
/// The codec against torch.load(weights_only=True) of PyTorch 2.14 on the same inputs: the mutations
/// of <see cref="DisagreementMutations"/> and the older structure-aware ones. A silent disagreement
/// (both accept, the values differ) is a class of its own and fails the run, as do a crash, a hang or
/// an input over the memory cap. CONFORMANCE_FUZZ_SECONDS sets the length (make fuzz); otherwise a fixed count.
/// </summary>
[Trait("Category", "runtime")]
public sealed class TorchReferenceFuzzSpecs(ITestOutputHelper output)
{
    internal enum Verdict { BothAcceptSame, SilentDisagreement, BothRefuse, OnlyCodecRefuses, OnlyTorchRefuses, Crash, Hang, OverMemoryCap }

    private const int FuzzInputs = 300;

    [SkippableFact]
    public void Fuzzing_against_torch_2_14_finds_no_silent_disagreement()
    {
        using var torch = TorchReference.TryStart();
        if (torch is null)
            MatrixFixture.SkipOrFailWhenMissing($"no PyTorch in {TorchReference.Rootfs} (make setup provisions it)");
        var (outside, inside) = TorchReference.Folder("codec-fuzz");
        var counts = new ConcurrentDictionary<Verdict, int>();
        var kinds = new ConcurrentDictionary<string, int>();
        var failures = new List<string>();
        int n = 0;
        int? seconds = int.TryParse(Environment.GetEnvironmentVariable("CONFORMANCE_FUZZ_SECONDS"), out var s) && s > 0 ? s : null;
        var gen = Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 2 * DisagreementMutations.Kinds + 10], Gen.Int[0, int.MaxValue]);
        gen.Sample((seed, draw, where) =>
        {
            // About two thirds of the inputs aim at the causes of disagreement; the rest are the older
            // mutations (flipped bytes, zip fields, truncation, rebuilt archives), not random noise.
            int kind = draw < 2 * DisagreementMutations.Kinds ? DisagreementMutations.FirstKind + draw % DisagreementMutations.Kinds : 1 + draw - 2 * DisagreementMutations.Kinds;
            var plan = new CodecFuzzSpecs.Plan(seed, kind, where, where % 70000, 1 + where % 3000);
            var bytes = CodecFuzzSpecs.Mutate(plan);
            var name = $"input-{Interlocked.Increment(ref n)}.pt";
            var path = Path.Combine(outside, name);
            File.WriteAllBytes(path, bytes);
            var (outcome, detail, fingerprint) = CodecFuzzSpecs.Read(path);
            var (accepted, answer) = torch!.Read(inside + "/" + name);
            var verdict = outcome switch
            {
                CodecFuzzSpecs.Outcome.Crash => Verdict.Crash,
                CodecFuzzSpecs.Outcome.Hang => Verdict.Hang,
                CodecFuzzSpecs.Outcome.OverMemoryCap => Verdict.OverMemoryCap,
                CodecFuzzSpecs.Outcome.CleanError => accepted ? Verdict.OnlyCodecRefuses : Verdict.BothRefuse,
                _ => !accepted ? Verdict.OnlyTorchRefuses : answer == fingerprint ? Verdict.BothAcceptSame : Verdict.SilentDisagreement,
            };
            counts.AddOrUpdate(verdict, 1, (_, c) => c + 1);
            kinds.AddOrUpdate($"{kind}:{verdict}", 1, (_, c) => c + 1);
            // Not failures (one reader refuses), but worth reading: what torch refuses and the codec reads.
            if (verdict == Verdict.OnlyTorchRefuses && counts[verdict] <= 5)
                lock (failures) output.WriteLine($"only torch refuses ({plan}): {answer}");
            if (verdict is Verdict.SilentDisagreement or Verdict.Crash or Verdict.Hang or Verdict.OverMemoryCap)
            {
                var keep = Path.Combine(CodecSpecs.Scratch("fuzz-torch"), $"{verdict}-{Guid.NewGuid():N}.pt");
                Directory.CreateDirectory(Path.GetDirectoryName(keep)!);
                File.Copy(path, keep);
                lock (failures)
                    failures.Add($"{verdict} ({plan}), kept as {keep}: " +
                        (verdict == Verdict.SilentDisagreement ? $"codec {Shorten(fingerprint)}, torch {Shorten(answer)}" : detail));
            }
            File.Delete(path);
        }, time: seconds ?? -1, iter: seconds is null ? FuzzInputs : int.MaxValue, threads: 1);
        Directory.Delete(outside, true);

        var summary = string.Join(", ", Enum.GetValues<Verdict>().Select(v => $"{v}: {counts.GetValueOrDefault(v)}"));
        int total = counts.Values.Sum();
        output.WriteLine($"{total} inputs against torch {torch!.Version}: {summary}");
        output.WriteLine("by mutation: " + string.Join(", ", kinds.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}")));
        File.WriteAllText(CodecSpecs.Scratch("fuzz-torch-summary.json"), JsonSerializer.Serialize(new { inputs = total, torch = torch.Version, verdicts = counts.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value) }));
        Assert.True(failures.Count == 0, $"{summary}\n" + string.Join("\n", failures.Take(10)));
        Assert.True(counts.GetValueOrDefault(Verdict.BothAcceptSame) > 0 && counts.GetValueOrDefault(Verdict.BothRefuse) > 0, summary);
    }

    private static string Shorten(string? s) => s is null ? "(none)" : s.Length <= 400 ? s : s[..400] + "...";
}
