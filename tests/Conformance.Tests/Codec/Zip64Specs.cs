using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using TorchCheckpoints;

namespace Conformance.Tests.Codec;

/// <summary>
/// zip64 both ways: the writer's zip64 layout read by the real torch.load (forced on a small file,
/// so it is cheap), and a checkpoint over 4 GiB written and read back by the codec, streamed
/// through a backend that keeps no tensor in memory.
/// </summary>
[Trait("Category", "runtime")]
public sealed class Zip64Specs
{
    [SkippableFact]
    public void The_zip64_layout_is_read_by_torch_load_bit_for_bit()
    {
        var path = CodecSpecs.Scratch("forced-zip64.pt");
        var values = Enumerable.Range(0, 1000).Select(i => (float)Math.Sin(i)).ToArray();
        var sd = new PyDict(ordered: true);
        sd.Add("w", RawTensor.FromArray(values, [10, 100], TorchDtype.Float32));
        sd.Add("step", RawTensor.FromArray(new long[] { 42 }, [], TorchDtype.Int64));
        TorchCheckpoint.Save(path, new PyDict { { "model", sd }, { "epoch", 3L } }, RawTensors.Instance, forceZip64: true);

        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan().IndexOf("PK\u0006\u0006"u8) > 0, "no zip64 end record was written");
        var back = (PyDict)TorchCheckpoint.Load(path, RawTensors.Instance).Value!;
        Assert.Equal(values, ((RawTensor)((PyDict)back["model"]!)["w"]!).ToArray<float>());

        // Every PyTorch: the host's, and each rootfs's through chroot (the checkout is mounted at the same path).
        var script = "import sys, zipfile, torch; zipfile.ZipFile(sys.argv[1]).testzip(); " +
                     "c = torch.load(sys.argv[1]); w = c['model']['w']; " +
                     "print(c['epoch'], list(w.shape), w.dtype, repr(float(w.double().sum())), int(c['model']['step']))";
        var expected = $"3 [10, 100] torch.float32 {values.Select(v => (double)v).Sum().ToString("R", System.Globalization.CultureInfo.InvariantCulture)} 42";
        var pythons = new List<(string File, string[] Prefix)> { ("/usr/bin/python3", []) };
        foreach (var rootfs in new[] { "rootfs-trixie", "rootfs-forky" }.Select(r => Path.Combine("/var/cache/torch-conformance", r)))
        {
            if (File.Exists(Path.Combine(rootfs, "usr/bin/python3")) && File.Exists(Path.Combine(rootfs, path.TrimStart('/'))))
                pythons.Add(("chroot", [rootfs, "/usr/bin/python3"]));
        }
        if (pythons.Count < 3)
            MatrixFixture.SkipOrFailWhenMissing($"only {pythons.Count} of 3 PyTorch environments can read {path}");
        foreach (var (file, prefix) in pythons)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in prefix) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(path);
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd();
            var error = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"{file} {string.Join(" ", prefix)}: {error}");
            Assert.Equal(expected, output.Trim());
        }
    }

    [Fact]
    public void A_checkpoint_over_4_GiB_is_written_as_zip64_and_read_back_whole()
    {
        var path = CodecSpecs.Scratch("over-4-gib.pt");
        try
        {
            long bytes = (4L << 30) + (3 << 20) + 12; // past 4 GiB, not a multiple of the chunk size
            var big = new Pattern(bytes / 4, Seed: 7);
            var small = new Pattern(5, Seed: 9);
            var value = new PyDict(ordered: true);
            value.Add("small.before", small);
            value.Add("big", big);
            value.Add("small.after", new Pattern(3, Seed: 11)); // its offset is past 4 GiB
            TorchCheckpoint.Save(path, value, PatternTensors.Instance);
            Assert.True(new FileInfo(path).Length > bytes);

            var back = (PyDict)TorchCheckpoint.Load(path, PatternTensors.Instance).Value!;
            Assert.Equal(["small.before", "big", "small.after"], back.Keys.Cast<string>());
            Assert.Equal(big, back["big"]);
            Assert.Equal(small, back["small.before"]);
            Assert.Equal(new Pattern(3, Seed: 11), back["small.after"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A float32 tensor of <paramref name="Elements"/>: every 8 MiB chunk is a fixed random block
    /// whose first 8 bytes are replaced by (seed, chunk index), so a misplaced or shifted chunk is caught.</summary>
    private sealed record Pattern(long Elements, int Seed)
    {
        public const int Chunk = 8 << 20;
        private static readonly byte[] Block = MakeBlock();

        private static byte[] MakeBlock()
        {
            var block = new byte[Chunk];
            new Random(1234).NextBytes(block);
            return block;
        }

        public static void Fill(Span<byte> span, long chunk, int seed)
        {
            Block.AsSpan(0, span.Length).CopyTo(span);
            Stamp(span, chunk, seed);
        }

        public static void Stamp(Span<byte> span, long chunk, int seed)
        {
            Span<byte> stamp = stackalloc byte[8];
            BinaryPrimitives.WriteInt32LittleEndian(stamp, seed);
            BinaryPrimitives.WriteInt32LittleEndian(stamp[4..], (int)chunk);
            stamp[..Math.Min(8, span.Length)].CopyTo(span);
        }

        public static bool Matches(ReadOnlySpan<byte> span, long chunk, int seed)
        {
            Span<byte> head = stackalloc byte[8];
            Block.AsSpan(0, Math.Min(8, span.Length)).CopyTo(head);
            Stamp(head, chunk, seed);
            return span[..Math.Min(8, span.Length)].SequenceEqual(head[..Math.Min(8, span.Length)])
                   && span[Math.Min(8, span.Length)..].SequenceEqual(Block.AsSpan(Math.Min(8, span.Length), span.Length - Math.Min(8, span.Length)));
        }
    }

    /// <summary>Writes patterns without holding them, and reads by checking every byte as it streams past.</summary>
    private sealed class PatternTensors : TensorBackend
    {
        public static readonly PatternTensors Instance = new();

        internal override object ReadStorage(StorageRequest request, RecordReader record)
        {
            var buffer = new byte[Pattern.Chunk];
            int seed = 0;
            for (long offset = 0, chunk = 0; offset < request.ByteCount; offset += Pattern.Chunk, chunk++)
            {
                var span = buffer.AsSpan(0, (int)Math.Min(Pattern.Chunk, request.ByteCount - offset));
                record.ReadExactly(span);
                if (chunk == 0 && span.Length >= 4) seed = BinaryPrimitives.ReadInt32LittleEndian(span);
                if (!Pattern.Matches(span, chunk, seed))
                    throw new InvalidDataException($"{record.Entry}: chunk {chunk} differs");
            }
            return new Pattern(request.ElementCount, seed);
        }

        internal override object CreateTensor(object storage, TensorLayout layout) => storage;
        internal override object AsParameter(object tensor, bool requiresGrad) => tensor;
        internal override bool IsTensor(object value) => value is Pattern;
        internal override TensorInfo Describe(object tensor) => new(TorchDtype.Float32, "float32", [((Pattern)tensor).Elements], null);

        internal override void WriteContiguous(object tensor, RecordWriter destination)
        {
            var p = (Pattern)tensor;
            var buffer = new byte[Pattern.Chunk];
            long total = p.Elements * 4;
            for (long offset = 0, chunk = 0; offset < total; offset += Pattern.Chunk, chunk++)
            {
                var span = buffer.AsSpan(0, (int)Math.Min(Pattern.Chunk, total - offset));
                Pattern.Fill(span, chunk, p.Seed);
                destination.Write(span);
            }
        }
    }
}
