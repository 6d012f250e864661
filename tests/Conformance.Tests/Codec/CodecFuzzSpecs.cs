using System.Collections.Concurrent;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using CsCheck;
using TorchCheckpoints;
using Xunit.Abstractions;

namespace Conformance.Tests.Codec;

/// <summary>
/// Fuzzing the codec's reader in-process (RawTensors), as the safetensors project fuzzes its own:
/// random bytes, and structure-aware mutations of real checkpoints (size and offset fields, duplicated
/// and renamed entries, swapped dtypes, hostile globals, deep nesting, truncation). Every input ends
/// in one of: accepted-identical, accepted-different, clean error (CheckpointFormatException),
/// crash (any other exception), hang, or over the memory cap; the last three must never happen.
/// CONFORMANCE_FUZZ_SECONDS sets the run's length (20 s in make test, longer in make fuzz).
/// </summary>
[Trait("Category", "unit")]
public sealed class CodecFuzzSpecs(ITestOutputHelper output)
{
    private static readonly string Repo = RepoLayout.Find().Root;
    private static readonly TimeSpan HangAfter = TimeSpan.FromSeconds(30);  // a file of at most a few MB: no loaded machine takes this long

    internal enum Outcome { AcceptedIdentical, AcceptedDifferent, CleanError, Crash, Hang, OverMemoryCap }

    /// <summary>The seeds: real checkpoints of each producer (torch.save's stored zips, PyBridge's deflated ones).</summary>
    private static readonly (string Name, byte[] Bytes, string Fingerprint)[] Seeds = LoadSeeds();

    private static (string, byte[], string)[] LoadSeeds()
    {
        var names = new[]
        {
            "pytorch-2.6/ckpt_adam.checkpoint.pt", "pytorch-1.13/ckpt_sgd.checkpoint.pt", "pytorch-2.14/lenet.pickle.pt",
            "pytorch-2.6/all_dtypes.pickle.pt", "torchsharp-0.107/ckpt_adamw.checkpoint.pt", "torchsharp-0.107/lenet.pickle.pt",
            "pytorch-2.6/tied_weights.pickle.pt", "pytorch-1.13/gan.checkpoint.pt",
        };
        // torch 2.14's conj/neg sample: tensors whose values torch.load resolves through metadata.
        return names.Select(n => Path.Combine(Repo, "fixtures", n)).Append(Path.Combine(Repo, "tests", "samples", "codec", "conj-neg.pt")).Where(File.Exists)
            .Select(p => (Path.GetFileName(Path.GetDirectoryName(p)) + "/" + Path.GetFileName(p), File.ReadAllBytes(p), Fingerprint(TorchCheckpoint.Load(p, RawTensors.Instance).Value)))
            .ToArray();
    }

    /// <summary>A value's structure and every tensor's bytes, as one string to compare.</summary>
    internal static string Fingerprint(object? value)
    {
        var sb = new StringBuilder();
        void Walk(object? v)
        {
            switch (v)
            {
                case null: sb.Append("None;"); break;
                case PyDict d:
                    sb.Append(d.Ordered ? "OD{" : "{");
                    foreach (var (k, x) in d) { sb.Append(k is string s ? $"'{s}'" : k).Append(':'); Walk(x); }
                    sb.Append('}');
                    break;
                case PyTuple t: sb.Append('('); foreach (var x in t.Items) Walk(x); sb.Append(')'); break;
                case List<object?> l: sb.Append('['); foreach (var x in l) Walk(x); sb.Append(']'); break;
                case RawTensor r:
                    sb.Append($"T<{r.Dtype.Name},{string.Join("x", r.Shape)},{r.RequiresGrad},{Convert.ToHexString(SHA256.HashData(r.ToContiguousBytes()))}>");
                    break;
                case byte[] b: sb.Append("b'").Append(Convert.ToHexString(b)).Append('\''); break;
                case double d: sb.Append(BitConverter.DoubleToInt64Bits(d)).Append('d'); break;
                default: sb.Append(v.GetType().Name).Append('=').Append(v).Append(';'); break;
            }
        }
        Walk(value);
        return sb.ToString();
    }

    /// <summary>Reads one input under the hang timeout and the memory cap, and classifies the result.</summary>
    internal static (Outcome Outcome, string Detail) Classify(string path, string? fingerprint)
    {
        var (outcome, detail, read) = Read(path);
        return outcome != Outcome.AcceptedDifferent ? (outcome, detail)
            : fingerprint is not null && read == fingerprint ? (Outcome.AcceptedIdentical, "")
            : (Outcome.AcceptedDifferent, "");
    }

    /// <summary>Reads one input under the hang timeout and the memory cap: an accepted input comes back
    /// as AcceptedDifferent with its fingerprint, for the caller to compare.</summary>
    internal static (Outcome Outcome, string Detail, string? Fingerprint) Read(string path)
    {
        long length = new FileInfo(path).Length;
        long cap = (64L << 20) + 8 * length;
        (Outcome, string, string?) result = (Outcome.Hang, $"no answer after {HangAfter.TotalSeconds} s", null);
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var value = TorchCheckpoint.Load(path, RawTensors.Instance).Value;
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                result = allocated > cap ? (Outcome.OverMemoryCap, $"{allocated:N0} bytes allocated for a {length:N0}-byte file", null)
                    : (Outcome.AcceptedDifferent, "", Fingerprint(value));
            }
            catch (CheckpointFormatException e)
            {
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                result = allocated > cap ? (Outcome.OverMemoryCap, $"{allocated:N0} bytes allocated before: {e.Message}", null)
                    : !e.Message.StartsWith(path, StringComparison.Ordinal) ? (Outcome.Crash, $"the message does not start with the file: {e.Message}", null)
                    : (Outcome.CleanError, e.Message, null);
            }
            catch (Exception e)
            {
                result = (Outcome.Crash, e.ToString(), null);
            }
        }, 16 << 20);
        thread.IsBackground = true;
        thread.Start();
        thread.Join(HangAfter);
        return result;
    }

    /// <summary>One mutation of one seed, as CsCheck generates it: what to do, where and with what.</summary>
    internal sealed record Plan(int Seed, int Kind, int Where, long Value, int Count)
    {
        public override string ToString() => $"seed {Seed}, mutation {Kind}, at {Where}, value {Value}, count {Count}";
    }

    private static readonly Gen<Plan> Plans =
        Gen.Select(Gen.Int[0, 1000], Gen.Int[0, DisagreementMutations.FirstKind + DisagreementMutations.Kinds - 1], Gen.Int[0, int.MaxValue],
            Gen.OneOf(Gen.Long[-2, 70000], Gen.Const(0xFFFFFFFFL), Gen.Const(0x7FFFFFFFL), Gen.Long, Gen.Const(long.MaxValue), Gen.Const(1L << 32)),
            Gen.Int[1, 100000],
            (s, k, w, v, c) => new Plan(s, k, w, v, c));

    /// <summary>The mutated file's bytes.</summary>
    internal static byte[] Mutate(Plan plan)
    {
        var (_, seed, _) = Seeds[plan.Seed % Seeds.Length];
        var bytes = (byte[])seed.Clone();
        var rng = new Random(plan.Where);
        switch (plan.Kind)
        {
            case 0: // random bytes
                var noise = new byte[plan.Count % 4096];
                rng.NextBytes(noise);
                if (noise.Length >= 4 && rng.Next(2) == 0) "PK\u0003\u0004"u8.CopyTo(noise);
                return noise;
            case 1: // flip bytes
                for (int i = 0; i < 1 + plan.Count % 8; i++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                return bytes;
            case 2: // overwrite a zip structure field (sizes, offsets, counts, name lengths) with an interesting value
            {
                var fields = ZipFields(bytes);
                var (at, width) = fields[plan.Where % fields.Count];
                for (int i = 0; i < width; i++) bytes[at + i] = (byte)(plan.Value >> (8 * i));
                return bytes;
            }
            case 3: // truncate
                return bytes[..(plan.Where % bytes.Length)];
            default: // rebuild the archive from its entries, changed
                return Rebuild(seed, plan, rng);
        }
    }

    /// <summary>Offsets and widths of the size, offset, count and length fields in every zip header.</summary>
    private static List<(int At, int Width)> ZipFields(byte[] b)
    {
        var fields = new List<(int, int)>();
        for (int i = 0; i + 4 <= b.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(b, i);
            if (sig == 0x04034b50 && i + 30 <= b.Length) fields.AddRange([(i + 14, 4), (i + 18, 4), (i + 22, 4), (i + 26, 2), (i + 28, 2), (i + 8, 2)]);
            else if (sig == 0x02014b50 && i + 46 <= b.Length) fields.AddRange([(i + 10, 2), (i + 20, 4), (i + 24, 4), (i + 28, 2), (i + 30, 2), (i + 42, 4)]);
            else if (sig == 0x06054b50 && i + 22 <= b.Length) fields.AddRange([(i + 10, 2), (i + 12, 4), (i + 16, 4), (i + 20, 2)]);
        }
        return fields.Count == 0 ? [(0, 4)] : fields;
    }

    private static byte[] Rebuild(byte[] seed, Plan plan, Random rng)
    {
        if (plan.Kind >= DisagreementMutations.FirstKind)
            return DisagreementMutations.Mutate(plan.Kind, seed, rng);
        var entries = new List<(string Name, byte[] Data)>();
        using (var zip = new ZipArchive(new MemoryStream(seed), ZipArchiveMode.Read))
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var m = new MemoryStream();
                s.CopyTo(m);
                entries.Add((e.FullName, m.ToArray()));
            }
        int pkl = entries.FindIndex(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        var pickle = entries[pkl].Data;
        var raw = new RawZip();
        bool deflate = rng.Next(3) == 0;
        switch (plan.Kind)
        {
            case 4: // duplicate an entry (a changed copy first)
            {
                var (name, data) = entries[plan.Where % entries.Count];
                var copy = (byte[])data.Clone();
                if (copy.Length > 0) copy[rng.Next(copy.Length)] ^= 1;
                raw.Add(name, copy, deflate);
                break;
            }
            case 5: // swap a storage dtype
            {
                var classes = TorchDtype.All.Select(d => d.StorageClass).ToArray();
                var text = Encoding.Latin1.GetString(pickle);
                var from = classes.Where(c => text.Contains(c)).DefaultIfEmpty("FloatStorage").ToArray()[plan.Where % Math.Max(1, classes.Count(c => text.Contains(c)))];
                pickle = Encoding.Latin1.GetBytes(text.Replace(from, classes[plan.Count % classes.Length]));
                break;
            }
            case 6: // a hostile global in place of an allowed one
            {
                var hostile = new[] { "os\nsystem", "builtins\neval", "subprocess\nPopen", "torch._utils\n_rebuild_qtensor", "collections\ndefaultdict", "__builtin__\nexec" };
                var text = Encoding.Latin1.GetString(pickle);
                var allowed = new[] { "collections\nOrderedDict", "torch._utils\n_rebuild_tensor_v2", "torch._utils\n_rebuild_parameter" };
                var target = allowed[plan.Where % allowed.Length];
                pickle = Encoding.Latin1.GetBytes(text.Replace(target, hostile[plan.Count % hostile.Length]));
                break;
            }
            case 7: // deep nesting before the real pickle's body
            {
                int depth = plan.Count;
                var nest = (plan.Where % 3) switch
                {
                    0 => Enumerable.Repeat((byte)'(', depth).ToArray(),
                    1 => Enumerable.Repeat((byte)']', depth).Concat(Enumerable.Repeat((byte)'a', depth - 1)).ToArray(),
                    _ => Enumerable.Repeat(new byte[] { (byte)'}', (byte)'K', 1 }, depth).SelectMany(x => x).ToArray(),
                };
                pickle = pickle[..2].Concat(nest).Concat(pickle[2..]).ToArray();
                break;
            }
            case 8: // a memo bomb: many LONG_BINPUT of the same value
                pickle = pickle[..2].Concat(new byte[] { (byte)'N' }).Concat(Enumerable.Range(0, plan.Count).SelectMany(i => new byte[] { (byte)'r' }.Concat(BitConverter.GetBytes(i)))).Concat(new byte[] { (byte)'0' }).Concat(pickle[2..]).ToArray();
                break;
            case 9: // a second top-level folder
                raw.Add("other/data.pkl", pickle, deflate);
                break;
            case 10: // a record's numel re-declared
            {
                var marker = "X\u0003\u0000\u0000\u0000cpu"u8.ToArray();
                int at = pickle.AsSpan().IndexOf(marker);
                if (at >= 0 && at + marker.Length + 2 <= pickle.Length)
                {
                    var long1 = new byte[] { 0x8a, 8 }.Concat(BitConverter.GetBytes(plan.Value)).ToArray();
                    int end = pickle[at + marker.Length] == (byte)'K' ? at + marker.Length + 2 : pickle[at + marker.Length] == (byte)'M' ? at + marker.Length + 3 : at + marker.Length + 5;
                    pickle = pickle[..(at + marker.Length)].Concat(long1).Concat(pickle[Math.Min(end, pickle.Length)..]).ToArray();
                }
                break;
            }
            default: // a pickle cut short and padded with noise
            {
                var noise = new byte[plan.Count % 64];
                rng.NextBytes(noise);
                pickle = pickle[..(plan.Where % pickle.Length)].Concat(noise).ToArray();
                break;
            }
        }
        entries[pkl] = (entries[pkl].Name, pickle);
        foreach (var (name, data) in entries)
            raw.Add(name, data, deflate && rng.Next(2) == 0);
        return raw.Build();
    }

    /// <summary><c>make fuzz</c> sets CONFORMANCE_FUZZ_SECONDS: a fuzz for that long. Otherwise (<c>make test</c>) a
    /// fixed number of inputs, so that the verdict does not hang on how fast, or how loaded, the machine is.</summary>
    private static int? FuzzSeconds() =>
        int.TryParse(Environment.GetEnvironmentVariable("CONFORMANCE_FUZZ_SECONDS"), out var s) && s > 0 ? s : null;
    private const int FuzzInputs = 1500;

    [Fact]
    public void Fuzzing_the_reader_gives_no_crash_no_hang_and_nothing_over_the_memory_cap()
    {
        Assert.True(Seeds.Length >= 6, $"only {Seeds.Length} seed checkpoints were found");
        var dir = CodecSpecs.Scratch("fuzz");
        Directory.CreateDirectory(dir);
        var counts = new ConcurrentDictionary<Outcome, int>();
        var failures = new ConcurrentBag<string>();
        int n = 0;
        var started = DateTime.UtcNow;
        Plans.Sample(plan =>
        {
            var bytes = Mutate(plan);
            var path = Path.Combine(dir, $"input-{Interlocked.Increment(ref n)}.pt");
            File.WriteAllBytes(path, bytes);
            var fingerprint = plan.Kind == 0 ? null : Seeds[plan.Seed % Seeds.Length].Fingerprint;
            var (outcome, detail) = Classify(path, fingerprint);
            counts.AddOrUpdate(outcome, 1, (_, c) => c + 1);
            if (outcome is Outcome.Crash or Outcome.Hang or Outcome.OverMemoryCap)
            {
                var keep = Path.Combine(dir, $"failure-{outcome}-{Guid.NewGuid():N}.pt");
                File.Copy(path, keep);
                failures.Add($"{outcome} ({plan}), kept as {keep}: {detail}");
            }
            File.Delete(path);
            return true;
        }, time: FuzzSeconds() ?? -1, iter: FuzzSeconds() is null ? FuzzInputs : int.MaxValue, threads: 2);

        var summary = string.Join(", ", Enum.GetValues<Outcome>().Select(o => $"{o}: {counts.GetValueOrDefault(o)}"));
        int total = counts.Values.Sum();
        output.WriteLine($"{total} inputs in {(DateTime.UtcNow - started).TotalSeconds:F0} s from {Seeds.Length} seeds: {summary}");
        File.WriteAllText(Path.Combine(dir, "summary.json"), JsonSerializer.Serialize(new { inputs = total, seeds = Seeds.Select(s => s.Name), outcomes = counts.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value) }));
        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
        if (FuzzSeconds() is null) Assert.True(total == FuzzInputs, $"{total} of {FuzzInputs} inputs were tried: {summary}");
        else Assert.True(total > 0, $"no input was tried in {FuzzSeconds()} s: {summary}");
        Assert.True(counts.GetValueOrDefault(Outcome.CleanError) > 0 && counts.GetValueOrDefault(Outcome.AcceptedIdentical) > 0, summary);
    }

    /// <summary>The attacks corpus: the worst inputs found, kept as files; each is refused by name, within the memory cap.</summary>
    [Fact]
    public void Every_attack_in_the_corpus_is_refused_with_a_message_naming_the_file()
    {
        var dir = Path.Combine(Repo, "tests", "attacks", "codec");
        var expected = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(dir, "expected.json")))!;
        var files = Directory.GetFiles(dir, "*.pt").Order().ToArray();
        Assert.Equal(expected.Keys.Order(), files.Select(Path.GetFileName).Order()!);
        foreach (var file in files)
        {
            var (outcome, detail) = Classify(file, null);
            Assert.True(outcome == Outcome.CleanError, $"{file}: {outcome}: {detail}");
            Assert.Contains(expected[Path.GetFileName(file)], detail);
        }
    }
}
