using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// Files that torch.load(weights_only=True) and a zip or pickle reader can both accept while reading
/// different tensors: each is read as torch reads it, or refused naming the file and the entry. Every
/// input starts from a file real torch 2.14 wrote (a committed fixture or sample) and changes one thing.
/// </summary>
[Trait("Category", "unit")]
public sealed class StrictCodecSpecs
{
    private static readonly string Repo = RepoLayout.Find().Root;
    private static readonly string Lenet = Path.Combine(Repo, "fixtures", "pytorch-2.14", "lenet.pickle.pt");
    private static readonly string Samples = Path.Combine(Repo, "tests", "samples", "codec");

    internal static List<(string Name, byte[] Data)> LenetEntries() => RawZip.Entries(File.ReadAllBytes(Lenet));

    private static string Write(string name, byte[] bytes)
    {
        var path = CodecSpecs.Scratch(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static CheckpointFormatException Refused(string path)
    {
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    // torch (miniz) finds records case-insensitively: it reads a BYTEORDER of 'big', or whichever of
    // data.pkl / DATA.PKL its binary search meets first.
    [Theory]
    [InlineData("add", "lenet.pickle/BYTEORDER", "big", "lenet.pickle/byteorder")]
    [InlineData("add", "lenet.pickle/DATA.PKL", "pickle", "lenet.pickle/data.pkl")]
    [InlineData("add", "lenet.pickle/DATA/2", "zeros", "lenet.pickle/data/2")]
    [InlineData("add", "lenet.pickle/Version", "99\n", "lenet.pickle/version")]
    [InlineData("rename", "lenet.pickle/BYTEORDER", "big", "byteorder")]
    [InlineData("rename", "lenet.pickle/VERSION", "99\n", "version")]
    [InlineData("rename", "lenet.pickle/.Data/Version", "3\n", ".data/version")]
    public void Entry_names_equal_but_for_case_are_refused_naming_both(string how, string name, string content, string other)
    {
        var entries = LenetEntries();
        var twin = entries.SingleOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));
        byte[] data = content switch
        {
            "pickle" => CodecSpecs.Pickle(new PyDict { { "epoch", 3L } }),
            "zeros" => new byte[twin.Data.Length],
            _ => Encoding.ASCII.GetBytes(content),
        };
        if (how == "add" || twin.Name is null)
            entries.Add((name, data));
        else
            entries[entries.IndexOf(twin)] = (name, data);
        var path = Write($"case-{how}-{name.Replace('/', '_')}.pt", RawZip.Of(entries).Build());
        var e = Refused(path);
        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains(how == "add" ? $"'{other}'" : $"'lenet.pickle/{other}'", e.Message);
        Assert.Contains("case", e.Message);
    }

    // miniz takes the last end-record signature in the tail, however long that record says its comment is.
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_second_end_of_central_directory_record_in_the_zip_comment_is_refused(int hiddenCommentLength)
    {
        var real = LenetEntries();
        var other = real.Select(e => e.Name.EndsWith("/data/0", StringComparison.Ordinal) ? (e.Name, new byte[e.Data.Length]) : e).ToList();
        var path = Write($"hidden-end-{hiddenCommentLength}.pt", RawZip.WithHiddenEnd(RawZip.Of(real), RawZip.Of(other), hiddenCommentLength));
        var e = Refused(path);
        Assert.Contains("end-of-central-directory", e.Message);
        Assert.Contains("comment", e.Message);
    }

    [Theory]
    [InlineData("lenet.pickle/version", "99\n")]
    [InlineData("lenet.pickle/version", "4\n")]
    [InlineData("lenet.pickle/version", "0\n")]
    [InlineData("lenet.pickle/version", "three")]
    [InlineData("lenet.pickle/version", "")]
    [InlineData("lenet.pickle/.data/version", "99\n")]
    public void A_version_the_codec_does_not_know_is_refused(string entry, string version)
    {
        var entries = LenetEntries();
        int at = entries.FindIndex(e => e.Name == entry);
        if (at < 0) entries.Add((entry, Encoding.ASCII.GetBytes(version)));
        else entries[at] = (entry, Encoding.ASCII.GetBytes(version));
        var path = Write($"version-{entry.Replace('/', '_')}-{version.Trim()}.pt", RawZip.Of(entries).Build());
        var e = Refused(path);
        Assert.Contains($"'{entry}'", e.Message);
        Assert.Contains("version", e.Message);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("2\n")]
    [InlineData("3\n")]
    public void The_versions_torch_save_writes_are_read(string version)
    {
        var entries = LenetEntries();
        int at = entries.FindIndex(e => e.Name == "lenet.pickle/version");
        entries[at] = (entries[at].Name, Encoding.ASCII.GetBytes(version));
        var path = Write($"version-ok-{version.Trim()}.pt", RawZip.Of(entries).Build());
        Assert.Equal(CodecFuzzSpecs.Fingerprint(TorchCheckpoint.Load(Lenet, RawTensors.Instance).Value), CodecFuzzSpecs.Fingerprint(TorchCheckpoint.Load(path, RawTensors.Instance).Value));
    }

    [Theory]
    [InlineData("lenet.pickle/version")]
    [InlineData("lenet.pickle/.format_version")]
    [InlineData("lenet.pickle/.storage_alignment")]
    [InlineData("lenet.pickle/.data/serialization_id")]
    [InlineData("lenet.pickle/byteorder")]
    [InlineData("lenet.pickle/data/9")]
    public void A_stale_CRC_on_any_entry_is_refused(string entry)
    {
        var raw = new RawZip();
        foreach (var (name, data) in LenetEntries())
            raw.Add(name, data, crc: name == entry ? System.IO.Hashing.Crc32.HashToUInt32(data) ^ 0x10 : null);
        var path = Write($"stale-crc-{entry.Replace('/', '_')}.pt", raw.Build());
        var e = Refused(path);
        Assert.Contains($"entry '{entry}' is corrupted: its CRC-32", e.Message);
        Assert.Equal(entry, e.Entry);
    }

    /// <summary>The sample torch 2.14 wrote with conj and neg bits, read as torch.load reads it (the bits
    /// resolved): every tensor's bytes equal to what torch gave, and the plain tensor that shares its
    /// storage with a conj view left as it was.</summary>
    [Fact]
    public void Conj_and_neg_bits_are_resolved_as_torch_load_resolves_them()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(Samples, "conj-neg.json")))!["tensors"]!.AsObject();
        var loaded = (PyDict)TorchCheckpoint.Load(Path.Combine(Samples, "conj-neg.pt"), RawTensors.Instance).Value!;
        Assert.Equal(expected.Select(e => e.Key), loaded.Keys.Cast<string>());
        var wrong = new List<string>();
        foreach (var (key, t) in expected)
        {
            var raw = (RawTensor)loaded[key]!;
            Assert.Equal((string)t!["dtype"]!, raw.Dtype.Name);
            Assert.Equal(t["shape"]!.AsArray().Select(s => (long)s!), raw.Shape);
            var bytes = Convert.ToHexStringLower(raw.ToContiguousBytes());
            if (bytes != (string)t["bytes"]!)
                wrong.Add($"{key}: {bytes}, torch {(string)t["bytes"]!}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>Where torch's own answer depends on the CPU (negating a complex zero or NaN is 0 - z in its
    /// vector loops and (-re, -im) in its scalar ones), or torch refuses or cannot read the values.</summary>
    [Theory]
    [InlineData("neg.complex64", "zero", "zero or NaN")]
    [InlineData("neg.float16", "nan", "NaN")]
    [InlineData("neg.bfloat16", "nan", "NaN")]
    public void Conj_and_neg_bits_torch_resolves_by_the_CPU_are_refused_naming_the_key(string key, string fill, string words)
    {
        var sample = File.ReadAllBytes(Path.Combine(Samples, "conj-neg.pt"));
        var entries = RawZip.Entries(sample);
        var record = StorageOf(entries, key);
        int at = entries.FindIndex(e => e.Name == record);
        var data = (byte[])entries[at].Data.Clone();
        if (fill == "zero") Array.Clear(data, 0, 8);
        else { data[0] = 0xff; data[1] = 0x7f; } // a NaN in float16 and bfloat16
        entries[at] = (record, data);
        var path = Write($"conj-neg-{key}-{fill}.pt", RawZip.Of(entries).Build());
        var e = Refused(path);
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains(words, e.Message);
    }

    /// <summary>A neg view that repeats one element a hundred million times (stride 0): its resolved copy
    /// would be 400 MB from a 5 KB file, so it is refused before anything that large is allocated.</summary>
    [Fact]
    public void A_conj_or_neg_view_larger_than_the_file_s_storages_is_refused_before_copying()
    {
        var entries = RawZip.Entries(File.ReadAllBytes(Path.Combine(Samples, "conj-neg.pt")));
        int pkl = entries.FindIndex(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        var pickle = entries[pkl].Data;
        int at = pickle.AsSpan().IndexOf("neg.float32"u8);
        int size = at + pickle.AsSpan(at).IndexOf(new byte[] { (byte)'K', 0, (byte)'K', 8, 0x85 }) + 2; // offset 0, then the size tuple (8,)
        int stride = size + pickle.AsSpan(size).IndexOf(new byte[] { (byte)'K', 1, 0x85 });             // then the stride tuple (1,)
        var patched = pickle[..size].Concat(new byte[] { (byte)'J' }).Concat(BitConverter.GetBytes(100_000_000)).Concat(pickle[(size + 2)..stride])
            .Concat("K\u0000"u8.ToArray()).Concat(pickle[(stride + 2)..]).ToArray();
        entries[pkl] = (entries[pkl].Name, patched);
        var path = Write("neg-stride-0.pt", RawZip.Of(entries).Build());
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("needs a copy of 400,000,000 bytes", e.Message);
        Assert.True(allocated < 16L << 20, $"{allocated:N0} bytes allocated before: {e.Message}");
    }

    /// <summary>The record behind a key of the conj-neg sample: torch numbers storages in the order it
    /// meets them (make_samples.py), checked here by the record's size.</summary>
    private static string StorageOf(List<(string Name, byte[] Data)> entries, string key)
    {
        var (storage, bytes) = key switch
        {
            "neg.complex64" => ("3", 5 * 8),
            "neg.float16" => ("6", 3 * 2),
            "neg.bfloat16" => ("7", 3 * 2),
            _ => throw new ArgumentException(key),
        };
        var name = $"conj-neg/data/{storage}";
        Assert.Equal(bytes, entries.Single(e => e.Name == name).Data.Length);
        return name;
    }

    /// <summary>torch.load gives a tensor without data for a storage on the meta device, whatever the record holds.</summary>
    [Fact]
    public void A_storage_on_the_meta_device_is_refused_naming_the_key_and_meta()
    {
        var entries = LenetEntries();
        int pkl = entries.FindIndex(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal));
        var pickle = entries[pkl].Data;
        var cpu = "X\u0003\u0000\u0000\u0000cpu"u8.ToArray();
        int at = pickle.AsSpan().IndexOf(cpu);
        entries[pkl] = (entries[pkl].Name, pickle[..at].Concat("X\u0004\u0000\u0000\u0000meta"u8.ToArray()).Concat(pickle[(at + cpu.Length)..]).ToArray());
        var path = Write("meta-location.pt", RawZip.Of(entries).Build());
        var e = Refused(path);
        Assert.Contains("'meta'", e.Message);
        Assert.Contains("'conv1.weight'", e.Message);
    }

    /// <summary>What torch 2.14 itself writes for a meta tensor: a global the codec does not run, refused by name.</summary>
    [Fact]
    public void A_meta_tensor_torch_saved_is_refused_naming_its_rebuild_global()
    {
        var path = Path.Combine(Samples, "meta.pt");
        var e = Assert.Throws<ForbiddenGlobalException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        Assert.Equal("torch._utils._rebuild_meta_tensor_no_storage", e.Global);
        Assert.StartsWith(path, e.Message);
    }

    /// <summary>An integer tensor saved with requires_grad, which torch.load refuses ("only Tensors of
    /// floating point and complex dtype can require gradients").</summary>
    [Fact]
    public void An_integer_tensor_that_requires_grad_is_refused_as_torch_refuses_it()
    {
        var pickle = CodecSpecs.Pickle(new PyDict { { "w", RawTensor.FromArray(new[] { 1, 2 }, [2], TorchDtype.Int32) } });
        pickle[Array.IndexOf(pickle, (byte)0x89)] = 0x88; // requires_grad: NEWFALSE -> NEWTRUE
        var path = Write("int-requires-grad.pt", new RawZip().Add("archive/data.pkl", pickle).Add("archive/data/0", new byte[8]).Add("archive/version", "3\n"u8.ToArray()).Build());
        var e = Refused(path);
        Assert.Contains("of dtype torch.int32 requires grad", e.Message);
    }

    /// <summary>A million nested lists in 2 MB of pickle (a million EMPTY_LISTs, then a million APPENDs):
    /// refused for depth while the lists are being nested, within the fuzzer's memory cap.</summary>
    [Fact]
    public void A_million_nested_lists_are_refused_for_depth_while_parsing_within_the_memory_cap()
    {
        const int n = 1_000_000;
        var pickle = new byte[] { 0x80, 2 }.Concat(Enumerable.Repeat((byte)']', n)).Concat(Enumerable.Repeat((byte)'a', n - 1)).Append((byte)'.').ToArray();
        var path = Write("million-nested-lists.pt", new RawZip().Add("archive/data.pkl", pickle).Add("archive/version", "3\n"u8.ToArray()).Build());
        long cap = (64L << 20) + 8 * new FileInfo(path).Length;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointLimitException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(nameof(CheckpointLimits.MaxPickleDepth), e.Limit);
        Assert.True(allocated < cap, $"{allocated:N0} bytes allocated (cap {cap:N0}) before: {e.Message}");
    }

    /// <summary>The same nesting made through the memo (each new list appended into the last, then fetched
    /// back to take the next): a container changed after it was put inside another is refused at once.</summary>
    [Fact]
    public void Lists_nested_through_the_memo_are_refused_while_parsing()
    {
        const int n = 1_000_000;
        var body = new List<byte> { 0x80, 2, (byte)']', (byte)'q', 1 }; // the root, kept in memo 1 for STOP
        for (int i = 0; i < n; i++)
            body.AddRange(new byte[] { (byte)']', (byte)'q', 0, (byte)'a', (byte)'h', 0 }); // push L', memo it, append into L, fetch L'
        body.AddRange(new byte[] { (byte)'h', 1, (byte)'.' });
        var path = Write("memo-nested-lists.pt", new RawZip().Add("archive/data.pkl", body.ToArray()).Build());
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpoint.Load(path, RawTensors.Instance).Value);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("already inside another", e.Message);
        Assert.True(allocated < 16L << 20, $"{allocated:N0} bytes allocated before: {e.Message}");
    }
}
