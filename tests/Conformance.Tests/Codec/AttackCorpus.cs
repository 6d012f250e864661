using System.Text;
using System.Text.Json;
using Conformance.Orchestrator.Runtimes;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// Writes tests/attacks/codec/: the worst inputs the codec has met, as files, with the words each
/// refusal must contain (expected.json). Rewrite it with CONFORMANCE_WRITE_ATTACKS=1;
/// CodecFuzzSpecs replays the committed files on every run.
/// </summary>
[Trait("Category", "unit")]
public sealed class AttackCorpus
{
    private static byte[] Pickle(object? v) => CodecSpecs.Pickle(v);

    private static RawTensor Floats(params float[] values) => RawTensor.FromArray(values, [values.Length], TorchDtype.Float32);

    internal static Dictionary<string, (byte[] Bytes, string Expected)> Build(string realCheckpoint)
    {
        var real = File.ReadAllBytes(realCheckpoint);
        var four = Pickle(new PyDict { { "w", Floats(1, 2, 3, 4) } });
        byte[] PatchNumel(long to)
        {
            var marker = new byte[] { (byte)'X', 3, 0, 0, 0, (byte)'c', (byte)'p', (byte)'u', (byte)'K', 4 };
            int at = four.AsSpan().IndexOf(marker);
            return four[..(at + 8)].Concat(new byte[] { 0x8a, 8 }).Concat(BitConverter.GetBytes(to)).Concat(four[(at + marker.Length)..]).ToArray();
        }
        var hostile = Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(Pickle(new PyDict(ordered: true) { { "epoch", 3L } }))
            .Replace("collections\nOrderedDict", "os\nsystem"));
        var deep = four[..2].Concat(Enumerable.Repeat((byte)'(', 100_000)).Concat(four[2..]).ToArray();
        var crc = (byte[])real.Clone();
        crc[real.AsSpan().IndexOf("data/0"u8) + 200] ^= 0x40;
        var entries = RawZip.Entries(real);
        var folder = entries[0].Name[..(entries[0].Name.IndexOf('/') + 1)];
        List<(string, byte[])> With(string name, byte[] data) =>
            entries.Select(e => e.Name == name ? (e.Name, data) : e).Concat(entries.Any(e => e.Name == name) ? [] : [(name, data)]).ToList();
        var pickle = entries.Single(e => e.Name == folder + "data.pkl").Data;
        var cpu = "X\u0003\u0000\u0000\u0000cpu"u8.ToArray();
        int cpuAt = pickle.AsSpan().IndexOf(cpu);
        var meta = pickle[..cpuAt].Concat("X\u0004\u0000\u0000\u0000meta"u8.ToArray()).Concat(pickle[(cpuAt + cpu.Length)..]).ToArray();
        var staleVersion = new RawZip();
        foreach (var (name, data) in entries)
            staleVersion.Add(name, data, crc: name == folder + "version" ? System.IO.Hashing.Crc32.HashToUInt32(data) ^ 1 : null);
        return new()
        {
            ["duplicate-data-pkl.pt"] = (new RawZip().Add("archive/data.pkl", Pickle(new PyDict { { "epoch", 7L } }))
                .Add("archive/data.pkl", Pickle(new PyDict { { "epoch", 3L } })).Build(), "holds the entry 'archive/data.pkl' twice"),
            ["two-top-level-folders.pt"] = (new RawZip().Add("a/data.pkl", Pickle(new PyDict { { "epoch", 7L } }))
                .Add("b/data.pkl", Pickle(new PyDict { { "epoch", 3L } })).Build(), "two top-level folders"),
            ["local-header-renamed.pt"] = (new RawZip().Add("archive/data.pkl", four, localName: "archive/data.pkX")
                .Add("archive/data/0", new byte[16]).Build(), "in its local header"),
            ["data-pkl-declares-2-gib.pt"] = (new RawZip().Add("archive/data.pkl", Pickle(new PyDict { { "pad", new string('x', 6000) } }),
                deflate: true, declaredSize: 0x7FFFFFC7).Build(), "more than deflate can produce"),
            ["storage-inflates-past-numel.pt"] = (new RawZip().Add("archive/data.pkl", four)
                .Add("archive/data/0", new byte[64 << 20], deflate: true).Build(), "data.pkl declares storage '0' as 4 x torch.float32"),
            ["storage-declares-1-tib.pt"] = (new RawZip().Add("archive/data.pkl", PatchNumel(1L << 38))
                .Add("archive/data/0", new byte[16]).Build(), "as 274,877,906,944 x torch.float32"),
            ["zip64-offset-negative.pt"] = (new RawZip().Add("archive/data.pkl", four, offset: long.MinValue + 5).Build(), "beyond any file"),
            ["global-os-system.pt"] = (new RawZip().Add("archive/data.pkl", hostile).Build(), "asks for the global 'os.system'"),
            ["marks-100000-deep.pt"] = (new RawZip().Add("archive/data.pkl", deep).Add("archive/data/0", new byte[16]).Build(), "CheckpointLimits.MaxPickleDepth"),
            ["truncated-half.pt"] = (real[..(real.Length / 2)], "end-of-central-directory record is missing"),
            ["record-crc-mismatch.pt"] = (crc, "is corrupted: its CRC-32 is"),
            ["byteorder-big-in-upper-case.pt"] = (RawZip.Of(With(folder + "BYTEORDER", "big"u8.ToArray())).Build(), "differ only in case"),
            ["end-record-in-comment.pt"] = (RawZip.WithHiddenEnd(RawZip.Of(entries), RawZip.Of(With(folder + "data/0", new byte[512])), 1),
                "second end-of-central-directory record"),
            ["version-99.pt"] = (RawZip.Of(With(folder + "version", "99\n"u8.ToArray())).Build(), "gives the file format version '99'"),
            ["stale-crc-on-version.pt"] = (staleVersion.Build(), "version' is corrupted: its CRC-32 is"),
            ["storage-on-meta.pt"] = (RawZip.Of(With(folder + "data.pkl", meta)).Build(), "on the 'meta' device"),
        };
    }

    /// <summary>The committed corpus is what <see cref="Build"/> makes (so each file's story is in code);
    /// with CONFORMANCE_WRITE_ATTACKS=1 it is rewritten instead.</summary>
    [Fact]
    public void The_committed_corpus_is_what_the_builder_makes()
    {
        var repo = RepoLayout.Find().Root;
        var dir = Path.Combine(repo, "tests", "attacks", "codec");
        var attacks = Build(Path.Combine(repo, "fixtures", "pytorch-2.6", "ckpt_adam.checkpoint.pt"));
        var expected = JsonSerializer.Serialize(attacks.ToDictionary(a => a.Key, a => a.Value.Expected), new JsonSerializerOptions { WriteIndented = true });
        if (Environment.GetEnvironmentVariable("CONFORMANCE_WRITE_ATTACKS") == "1")
        {
            Directory.CreateDirectory(dir);
            foreach (var (name, (bytes, _)) in attacks)
                File.WriteAllBytes(Path.Combine(dir, name), bytes);
            File.WriteAllText(Path.Combine(dir, "expected.json"), expected);
        }
        Assert.Equal(expected, File.ReadAllText(Path.Combine(dir, "expected.json")));
        foreach (var (name, (bytes, _)) in attacks)
            Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, name))), $"{name} differs from what the builder makes; rewrite with CONFORMANCE_WRITE_ATTACKS=1");
    }
}
