using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using TorchCheckpoints;
using Xunit.Abstractions;

namespace Conformance.Tests.Codec;

/// <summary>
/// The legacy torch.save format (torch &lt; 1.6, <c>_use_new_zipfile_serialization=False</c>) read by the
/// codec in-process (RawTensors): every committed <c>pickle_legacy</c> fixture read as its zip twin of the
/// same producer is read (keys in order, dtypes, shapes, bytes, shared storages) and as its manifest
/// says torch held it (SHA-256 of each tensor); storage views and offsets in hand-made files; damaged
/// and truncated files refused with a message naming what is wrong; and fixed-seed mutations of real
/// legacy files that end in a value or a <see cref="CheckpointFormatException"/>, never anything else.
/// </summary>
[Trait("Category", "unit")]
public sealed class LegacyFormatSpecs(ITestOutputHelper output)
{
    private static readonly string Repo = RepoLayout.Find().Root;

    private static string Sha(RawTensor t) => Convert.ToHexStringLower(SHA256.HashData(t.ToContiguousBytes()));

    private static string Write(string name, byte[] bytes)
    {
        var path = CodecSpecs.Scratch(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Every_committed_legacy_fixture_reads_as_its_zip_twin_and_as_its_manifest_says_torch_held_it()
    {
        int files = 0, tensors = 0, refusedLikeTwin = 0;
        var legacyFiles = Directory.GetFiles(Path.Combine(Repo, "fixtures"), "*.pickle_legacy.pt", SearchOption.AllDirectories).Order().ToList();
        Assert.True(legacyFiles.Count >= 60, $"only {legacyFiles.Count} legacy fixtures found");
        foreach (var path in legacyFiles)
        {
            var twin = path.Replace(".pickle_legacy.pt", ".pickle.pt", StringComparison.Ordinal);
            Assert.True(File.Exists(twin), $"{path} has no zip twin {twin}");
            // The first bytes are torch's magic number pickled with protocol 2: the file is really in the legacy format.
            Assert.Equal(new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 }, File.ReadAllBytes(path)[..14]);
            var manifest = JsonNode.Parse(File.ReadAllText(Path.ChangeExtension(path, ".json")))!;
            Assert.Equal("pickle_legacy", (string)manifest["route"]!);

            object? zipValue;
            try
            {
                zipValue = TorchCheckpoint.Load(twin, RawTensors.Instance).Value;
            }
            catch (CheckpointFormatException zipError)
            {
                // What the codec refuses in the zip format (a global outside the allowlist: quantized tensors,
                // dtypes with no typed-storage class) it refuses in the legacy format too, the same way.
                var legacyError = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
                Assert.Equal(zipError.GetType(), legacyError.GetType());
                if (zipError is ForbiddenGlobalException forbidden)
                    Assert.Equal(forbidden.Global, ((ForbiddenGlobalException)legacyError).Global);
                Assert.StartsWith(path, legacyError.Message);
                output.WriteLine($"refused like its zip twin: {path}: {legacyError.Message[..Math.Min(160, legacyError.Message.Length)]}");
                refusedLikeTwin++;
                continue;
            }

            object? loaded;
            try
            {
                loaded = TorchCheckpoint.Load(path, RawTensors.Instance).Value;
            }
            catch (CheckpointFormatException e)
            {
                Assert.Fail($"{path} is refused, but its zip twin is read: {e.Message}");
                throw;
            }
            var legacy = Assert.IsType<PyDict>(loaded);
            var zip = Assert.IsType<PyDict>(zipValue);
            Assert.Equal(zip.Keys.ToList(), legacy.Keys.ToList());
            var keys = legacy.Keys.Cast<string>().ToList();
            foreach (var key in keys)
            {
                var l = Assert.IsType<RawTensor>(legacy[key]);
                var z = Assert.IsType<RawTensor>(zip[key]);
                Assert.True(z.Dtype == l.Dtype, $"{path}: {key}: {l.Dtype} against the zip twin's {z.Dtype}");
                Assert.True(z.Shape.SequenceEqual(l.Shape), $"{path}: {key}: shape [{string.Join(", ", l.Shape)}] against [{string.Join(", ", z.Shape)}]");
                Assert.True(z.Stride.SequenceEqual(l.Stride) && z.StorageOffset == l.StorageOffset, $"{path}: {key}: stride or storage offset differs from the zip twin's");
                Assert.True(z.ToContiguousBytes().AsSpan().SequenceEqual(l.ToContiguousBytes()), $"{path}: {key}: bytes differ from the zip twin's");
                Assert.Equal(z.RequiresGrad, l.RequiresGrad);
            }
            // Tensors that share a storage in the zip twin (tied weights, views) share one in the legacy read, and no others.
            foreach (var a in keys)
                foreach (var b in keys.Where(b => string.CompareOrdinal(a, b) < 0))
                    Assert.True(ReferenceEquals(((RawTensor)zip[a]!).Storage, ((RawTensor)zip[b]!).Storage) == ReferenceEquals(((RawTensor)legacy[a]!).Storage, ((RawTensor)legacy[b]!).Storage),
                        $"{path}: '{a}' and '{b}' share a storage in one format and not in the other");

            var described = manifest["observation"]!["tensors"]!.AsArray();
            Assert.Equal(described.Select(t => (string)t!["key"]!).ToList(), keys);
            foreach (var t in described)
            {
                var key = (string)t!["key"]!;
                var raw = (RawTensor)legacy[key]!;
                Assert.Equal("torch." + (string)t["dtype"]!, raw.Dtype.Name);
                Assert.Equal(t["shape"]!.AsArray().Select(s => (long)s!).ToArray(), raw.Shape);
                Assert.True((string)t["sha256"]! == Sha(raw), $"{path}: {key}: bytes differ from what {(string)manifest["producer"]!} held");
                tensors++;
            }
            files++;
        }
        output.WriteLine($"{files} legacy fixtures read ({tensors} tensors), {refusedLikeTwin} refused as their zip twins are");
        Assert.True(files >= 55 && tensors >= 450, $"only {files} files and {tensors} tensors were checked");
        Assert.True(refusedLikeTwin <= 8, $"{refusedLikeTwin} legacy fixtures refused: a refusal must stay the exception");
    }

    // ---- Hand-made legacy files: the format as torch.serialization's _legacy_save lays it out. ----

    /// <summary>A legacy file: the three header pickles, <paramref name="main"/>, the key list, then each
    /// storage as its 8-byte element count and bytes.</summary>
    internal static byte[] LegacyFile(byte[] main, IEnumerable<string> keys, IEnumerable<(long Count, byte[] Bytes)> storages,
        byte[]? magic = null, long protocol = 1001)
    {
        var f = new List<byte>();
        f.AddRange(magic ?? [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.']);
        f.AddRange(new P().Int(protocol).Stop());
        f.AddRange(new P().Raw((byte)'}').Raw((byte)'(').Str("little_endian").Raw(0x88).Raw((byte)'u').Stop());
        f.AddRange(main);
        var list = new P().Raw((byte)']').Raw((byte)'(');
        foreach (var key in keys) list.Str(key);
        f.AddRange(list.Raw((byte)'e').Stop());
        foreach (var (count, bytes) in storages)
        {
            var header = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(header, count);
            f.AddRange(header);
            f.AddRange(bytes);
        }
        return f.ToArray();
    }

    /// <summary>A protocol-2 pickle, opcode by opcode.</summary>
    internal sealed class P
    {
        private readonly List<byte> _b = [0x80, 0x02];

        public P Raw(params byte[] bytes) { _b.AddRange(bytes); return this; }
        public P Str(string s) { var u = Encoding.UTF8.GetBytes(s); _b.Add((byte)'X'); _b.AddRange(BitConverter.GetBytes(u.Length)); _b.AddRange(u); return this; }
        public P Int(long n) { _b.Add((byte)'J'); _b.AddRange(BitConverter.GetBytes((int)n)); return this; }
        public P Global(string module, string name) { _b.Add((byte)'c'); _b.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); return this; }
        public P Tuple(params long[] items) { _b.Add((byte)'('); foreach (var i in items) Int(i); _b.Add((byte)'t'); return this; }

        /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, False, {}), over the persistent id
        /// ('storage', torch.&lt;type&gt;, key, 'cpu', numel, view) where view is None or (view_key, offset, size).</summary>
        public P Tensor(string type, string key, long numel, (string Key, long Offset, long Size)? view, long offset, long[] shape, long[] stride, string location = "cpu")
        {
            Global("torch._utils", "_rebuild_tensor_v2").Raw((byte)'(');
            Raw((byte)'(').Str("storage").Global("torch", type).Str(key).Str(location);
            // An int64 storage's count as LONG1 (8 bytes), as pickle writes ints past 32 bits: it must read as an int, not a big one.
            if (type == "LongStorage") Raw(0x8a, 8).Raw(BitConverter.GetBytes(numel));
            else Int(numel);
            if (view is { } v) Raw((byte)'(').Str(v.Key).Int(v.Offset).Int(v.Size).Raw((byte)'t');
            else Raw((byte)'N');
            Raw((byte)'t', (byte)'Q');
            return Int(offset).Tuple(shape).Tuple(stride).Raw(0x89, (byte)'}', (byte)'t', (byte)'R');
        }

        public byte[] Stop() { _b.Add((byte)'.'); return _b.ToArray(); }
    }

    private static byte[] Floats(int n, float start = 0) => Enumerable.Range(0, n).SelectMany(i => BitConverter.GetBytes(start + i)).ToArray();

    private static byte[] Longs(params long[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>An OrderedDict of: "whole" (root 'r', 10 floats 0..9), "view" (over the view 'v' of 'r' from
    /// element 4 for 4 elements, at storage offset 1, shape [2]: 5, 6), "strided" (over 'r' from 2, shape [3],
    /// stride [2]: 2, 4, 6), "ints" (root 's', 3 int64). Storages follow in the key list's order, s then r.</summary>
    private static byte[] MainPickle(string rKey = "r", (string, long, long)? view = null, string location = "cpu")
    {
        var p = new P().Global("collections", "OrderedDict").Raw((byte)')', (byte)'R').Raw((byte)'(');
        p.Str("whole").Tensor("FloatStorage", rKey, 10, null, 0, [10], [1], location);
        p.Str("view").Tensor("FloatStorage", rKey, 10, view ?? ("v", 4, 4), 1, [2], [1], location);
        p.Str("strided").Tensor("FloatStorage", rKey, 10, null, 2, [3], [2], location);
        p.Str("ints").Tensor("LongStorage", "s", 3, null, 0, [3], [1], location);
        return p.Raw((byte)'u').Stop();
    }

    private static byte[] Good() => LegacyFile(MainPickle(), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))]);

    private static float[] Values(RawTensor t) => t.ToContiguousBytes().Chunk(4).Select(c => BitConverter.ToSingle(c)).ToArray();

    [Fact]
    public void Storage_views_offsets_strides_and_shared_storages_come_out_with_torchs_values_in_any_key_order()
    {
        var path = Write("legacy-views.pt", Good());
        var dict = Assert.IsType<PyDict>(TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        Assert.Equal(new[] { "whole", "view", "strided", "ints" }, dict.Keys.Cast<string>());
        var whole = (RawTensor)dict["whole"]!;
        var view = (RawTensor)dict["view"]!;
        var strided = (RawTensor)dict["strided"]!;
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (float)i), Values(whole));
        Assert.Equal(new[] { 5f, 6f }, Values(view));
        Assert.Equal(5, view.StorageOffset); // the view's element 1 is the storage's element 4 + 1
        Assert.Equal(new[] { 2f, 4f, 6f }, Values(strided));
        Assert.Same(whole.Storage, view.Storage);
        Assert.Same(whole.Storage, strided.Storage);
        var ints = (RawTensor)dict["ints"]!;
        Assert.Equal(TorchDtype.Int64, ints.Dtype);
        Assert.Equal(Longs(7, 8, 9), ints.ToContiguousBytes());
        // The same through the typed entry points (in-process: RawTensors).
        Assert.Equal(4, TorchCheckpoint.AsDict(TorchCheckpoint.Load(path, RawTensors.Instance).Value, path).Count);
    }

    /// <summary>Each damage with the words its message must hold (besides the file's path, which starts it).</summary>
    public static TheoryData<string, string[]> Damages() => new()
    {
        { "storage-cut", ["is truncated", "storage 'r'", "needs 40 bytes", "only 39 bytes are left"] },
        { "count-cut", ["is truncated", "storage 'r'", "8-byte element count"] },
        { "trailing", ["3 bytes after its last storage", "'r' ends"] },
        { "count-differs", ["storage 'r'", "holds 11 elements by its own count", "declares it as 10 x torch.float32", "corrupt"] },
        { "key-missing", ["storage 'r'", "does not name it"] },
        { "key-unused", ["storage 'x'", "never uses it"] },
        { "key-twice", ["storage 's' twice"] },
        { "magic", ["is not a zip archive", "nor a legacy one", "80 02 8a 0a 6c fc 9c 46 f9 20 6a a8 50 18"] },
        { "protocol", ["legacy protocol version 1000", "1001"] },
        { "view-past-end", ["viewed as 'v' from element 8 for 4 elements, past its end"] },
        { "view-redeclared", ["storage view 'v' is declared twice"] },
        { "pickle-cut", ["is truncated", "ends inside its pickles", "legacy pickle"] },
        { "key-list-cut", ["is truncated", "ends inside its pickles", "storage key list pickle"] },
        { "module-id", ["pickled nn.Module"] },
        { "meta", ["'meta' device", "storage 'r'"] },
        { "tar", ["tar archive", "not read"] },
    };

    private static byte[] Damaged(string damage)
    {
        var good = Good();
        switch (damage)
        {
            case "storage-cut": return good[..^1];
            case "count-cut": return good[..^44];
            case "trailing": return [.. good, 1, 2, 3];
            case "count-differs":
            {
                var b = (byte[])good.Clone();
                BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(b.Length - 48), 11);
                return b;
            }
            case "key-missing": return LegacyFile(MainPickle(), ["s"], [(3, Longs(7, 8, 9))]);
            case "key-unused": return LegacyFile(MainPickle(), ["s", "r", "x"], [(3, Longs(7, 8, 9)), (10, Floats(10)), (1, Floats(1))]);
            case "key-twice": return LegacyFile(MainPickle(), ["s", "s", "r"], [(3, Longs(7, 8, 9)), (3, Longs(7, 8, 9)), (10, Floats(10))]);
            case "magic": return LegacyFile(MainPickle(), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))],
                magic: [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x18, (byte)'.']);
            case "protocol": return LegacyFile(MainPickle(), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))], protocol: 1000);
            case "view-past-end": return LegacyFile(MainPickle(view: ("v", 8, 4)), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))]);
            case "view-redeclared":
            {
                var p = new P().Global("collections", "OrderedDict").Raw((byte)')', (byte)'R').Raw((byte)'(');
                p.Str("a").Tensor("FloatStorage", "r", 10, ("v", 4, 4), 0, [4], [1]);
                p.Str("b").Tensor("FloatStorage", "r", 10, ("v", 2, 4), 0, [4], [1]);
                return LegacyFile(p.Raw((byte)'u').Stop(), ["r"], [(10, Floats(10))]);
            }
            case "pickle-cut": return good[..200];
            case "key-list-cut":
            {
                int keyList = good.Length - (8 + 24) - (8 + 40) - 10;
                return good[..keyList];
            }
            case "module-id":
            {
                var p = new P().Raw((byte)'(').Str("module").Raw((byte)'N', (byte)'N', (byte)'N', (byte)'t', (byte)'Q');
                return LegacyFile(p.Stop(), [], []);
            }
            case "meta": return LegacyFile(MainPickle(location: "meta"), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))]);
            case "tar":
            {
                var b = new byte[1024];
                Encoding.ASCII.GetBytes("sys_info").CopyTo(b, 0);
                Encoding.ASCII.GetBytes("ustar\0").CopyTo(b, 257);
                return b;
            }
            default: throw new ArgumentException(damage);
        }
    }

    [Theory]
    [MemberData(nameof(Damages))]
    public void A_damaged_or_truncated_legacy_file_is_refused_naming_what_is_wrong(string damage, string[] words)
    {
        var path = Write($"legacy-{damage}.pt", Damaged(damage));
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        output.WriteLine(e.Message);
        Assert.StartsWith(path, e.Message);
        foreach (var word in words)
            Assert.Contains(word, e.Message);
    }

    [Fact]
    public void Every_truncation_of_a_legacy_file_is_refused_and_the_whole_file_is_read()
    {
        var good = Good();
        var path = CodecSpecs.Scratch("legacy-prefix.pt");
        for (int n = 0; n < good.Length; n++)
        {
            File.WriteAllBytes(path, good[..n]);
            var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
            Assert.StartsWith(path, e.Message);
        }
        File.WriteAllBytes(path, good);
        Assert.Equal(4, Assert.IsType<PyDict>(TorchCheckpoint.Load(path, RawTensors.Instance).Value).Count);
    }

    [Fact]
    public void The_limits_hold_for_legacy_files_and_the_allowlist_is_the_zip_formats()
    {
        var path = Write("legacy-limits.pt", Good());
        var tensors = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance, new CheckpointLimits { MaxTensorBytes = 50 }).Value);
        Assert.Equal(nameof(CheckpointLimits.MaxTensorBytes), tensors.Limit);
        var pickle = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance, new CheckpointLimits { MaxPickleBytes = 100 }).Value);
        Assert.Equal(nameof(CheckpointLimits.MaxPickleBytes), pickle.Limit);
        var rank = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance, new CheckpointLimits { MaxRank = 0 }).Value);
        Assert.Equal(nameof(CheckpointLimits.MaxRank), rank.Limit);
        var entries = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance, new CheckpointLimits { MaxEntries = 1 }).Value);
        Assert.Equal(nameof(CheckpointLimits.MaxEntries), entries.Limit);
        var depth = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance, new CheckpointLimits { MaxPickleDepth = 2 }).Value);
        Assert.Equal(nameof(CheckpointLimits.MaxPickleDepth), depth.Limit);

        // A global outside the allowlist, in the object's pickle and in a header pickle, is refused before anything is built.
        var hostile = LegacyFile(new P().Global("os", "system").Str("echo").Raw(0x85, (byte)'R').Stop(), [], []);
        var forbidden = Assert.Throws<ForbiddenGlobalException>(() => TorchCheckpoint.Load(Write("legacy-global.pt", hostile), RawTensors.Instance).Value);
        Assert.Equal("os.system", forbidden.Global);
        var sysInfo = new P().Global("builtins", "eval").Stop();
        var inHeader = LegacyFile(MainPickle(), ["s", "r"], [(3, Longs(7, 8, 9)), (10, Floats(10))]);
        int at = 15 + new P().Int(1001).Stop().Length;
        int sysLength = new P().Raw((byte)'}').Raw((byte)'(').Str("little_endian").Raw(0x88).Raw((byte)'u').Stop().Length;
        var swapped = inHeader[..at].Concat(sysInfo).Concat(inHeader[(at + sysLength)..]).ToArray();
        var fromHeader = Assert.Throws<ForbiddenGlobalException>(() => TorchCheckpoint.Load(Write("legacy-header-global.pt", swapped), RawTensors.Instance).Value);
        Assert.Equal("builtins.eval", fromHeader.Global);
    }

    /// <summary>Fixed-seed mutations of real legacy files (each producer's) and of the hand-made one: flipped,
    /// overwritten, inserted, deleted and duplicated bytes, truncations. Each ends in a value or a
    /// CheckpointFormatException naming the file; anything else (a crash) fails the spec with the seed's case.</summary>
    [Fact]
    public void Fixed_seed_mutations_of_legacy_files_end_in_a_value_or_a_format_exception_never_a_crash()
    {
        var seeds = new[] { "pytorch-1.13/lenet.pickle_legacy.pt", "pytorch-2.6/all_dtypes.pickle_legacy.pt", "pytorch-2.14/tied_weights.pickle_legacy.pt", "pytorch-1.13/storage_views.pickle_legacy.pt" }
            .Select(n => (n, File.ReadAllBytes(Path.Combine(Repo, "fixtures", n))))
            .Append(("hand-made views", Good())).ToList();
        var random = new Random(20260105);
        var path = CodecSpecs.Scratch("legacy-fuzz.pt");
        int accepted = 0, refused = 0;
        const int Cases = 1500;
        for (int i = 0; i < Cases; i++)
        {
            var (name, original) = seeds[i % seeds.Count];
            var bytes = new List<byte>(original);
            var what = new StringBuilder();
            for (int m = random.Next(1, 4); m > 0; m--)
            {
                int at = random.Next(bytes.Count);
                switch (random.Next(6))
                {
                    case 0: bytes[at] ^= (byte)(1 << random.Next(8)); what.Append($"flip@{at} "); break;
                    case 1: bytes[at] = (byte)random.Next(256); what.Append($"set@{at} "); break;
                    case 2: bytes.Insert(at, (byte)random.Next(256)); what.Append($"insert@{at} "); break;
                    case 3: bytes.RemoveAt(at); what.Append($"delete@{at} "); break;
                    case 4:
                    {
                        int length = Math.Min(random.Next(1, 64), bytes.Count - at);
                        bytes.InsertRange(at, bytes.GetRange(at, length));
                        what.Append($"dup@{at}+{length} ");
                        break;
                    }
                    default: bytes.RemoveRange(at, bytes.Count - at); what.Append($"cut@{at} "); break;
                }
                if (bytes.Count == 0) bytes.Add(0x80);
            }
            File.WriteAllBytes(path, bytes.ToArray());
            try
            {
                TorchCheckpoint.Load(path, RawTensors.Instance);
                accepted++;
            }
            catch (CheckpointFormatException e)
            {
                Assert.True(e.Message.StartsWith(path, StringComparison.Ordinal), $"case {i} ({name}: {what}): the message does not start with the file: {e.Message}");
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({name}: {what}) crashed the reader: {e}");
            }
        }
        output.WriteLine($"{Cases} mutations: {accepted} read, {refused} refused");
        Assert.True(refused > Cases / 2, $"only {refused} of {Cases} mutations were refused");
    }
}
