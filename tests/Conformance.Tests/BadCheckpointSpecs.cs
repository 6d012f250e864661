using System.IO.Compression;
using System.Text;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Tests;

/// <summary>
/// Bad checkpoints fed to the real TorchSharp worker's codec: each gets a clear load_error naming
/// the problem, and the same worker process answers the next request.
/// </summary>
[Trait("Category", "runtime")]
[Collection(MatrixCollection.Name)]
public sealed class BadCheckpointSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private static (Runtime TorchSharp, Runtime PyTorch) Runtimes()
    {
        var suite = MatrixFixture.Suite;
        var ts = suite.Runtimes.FirstOrDefault(r => r.Kind == RuntimeKinds.TorchSharp && r.Available);
        var py = suite.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderBy(r => r.Where.StartsWith("host") ? 0 : 1).FirstOrDefault();
        MatrixFixture.SkipOrFailWhenMissing(ts is null || py is null ? "needs a TorchSharp and a PyTorch runtime" : null);
        return (ts!, py!);
    }

    private static string Dir()
    {
        var dir = Path.Combine(MatrixFixture.Suite.Repo.ArtifactsDir, "tests", "bad-checkpoints");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A zip laid out as torch.save lays it out, holding <paramref name="pickle"/> and the given records.</summary>
    private static string Zip(string name, byte[] pickle, params (string Name, byte[] Data)[] records)
    {
        var path = Path.Combine(Dir(), name);
        File.Delete(path);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            void Add(string entry, byte[] data)
            {
                using var s = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
            Add("archive/data.pkl", pickle);
            Add("archive/version", "3\n"u8.ToArray());
            foreach (var (n, d) in records) Add("archive/data/" + n, d);
        }
        return path;
    }

    private static Reply Consume(WorkerPool pool, Runtime ts, string path) =>
        pool.Send(ts, Ops.ConsumeCheckpoint, new() { ["case"] = "ckpt_adam", ["optimizer"] = "adam", ["mode"] = "default", ["path"] = path }, Timeout);

    private static string RealCheckpoint(WorkerPool pool, Runtime py, string name)
    {
        var path = Path.Combine(Dir(), name);
        var reply = pool.Send(py, Ops.ProduceCheckpoint, new() { ["case"] = "ckpt_adam", ["optimizer"] = "adam", ["path"] = path, ["seed"] = 0 }, Timeout);
        Assert.True(reply.Result is not null, MatrixRunnerDescribe(reply));
        return path;
    }

    private static string MatrixRunnerDescribe(Reply r) => Conformance.Orchestrator.Judgement.CellJudge.FromReply(r, null, "worker").Line;

    public static TheoryData<string> BadInputs => new() { "truncated", "corrupted_entry", "wrong_magic", "forbidden_global", "missing_key", "short_storage" };

    [SkippableTheory(Timeout = 300_000)]
    [MemberData(nameof(BadInputs))]
    public async Task A_bad_checkpoint_gets_a_clear_error_and_the_worker_goes_on(string kind)
    {
        await Task.Yield();
        var (ts, py) = Runtimes();
        using var pool = new WorkerPool(Timeout);
        var good = RealCheckpoint(pool, py, "good.pt");
        var (path, expected) = Make(kind, good);

        var reply = Consume(pool, ts, path);
        var error = Assert.IsType<Reply.Answered>(reply).Response.Error;
        Assert.NotNull(error);
        Assert.Equal(ErrorKinds.LoadError, error!.Kind);
        Assert.Contains(path, error.Message);
        foreach (var fragment in expected) Assert.Contains(fragment, error.Message);

        // The same worker process reads the good checkpoint next.
        Assert.NotNull(Consume(pool, ts, good).Result);
        Assert.Equal(1, pool.Starts[ts.Id]);
        if (kind == "forbidden_global") Assert.False(File.Exists(Pwned), "the forbidden global ran");
    }

    private static string Pwned => Path.Combine(Dir(), "pwned");

    [SkippableFact(Timeout = 300_000)]
    public async Task The_hostile_file_is_live_an_unrestricted_torch_load_runs_its_payload()
    {
        // The positive control for the forbidden_global case: without it, "the payload did not run"
        // could hold only because the file was harmless. torch 1.13's torch.load defaults to the
        // full unpickler, which executes os.system, so the marker file appears.
        await Task.Yield();
        var (_, py) = Runtimes();
        var oldest = MatrixFixture.Suite.Runtimes.Where(r => r.Kind == RuntimeKinds.PyTorch && r.Available).OrderBy(r => Runtime.ParseVersion(r.Version)).First();
        MatrixFixture.SkipOrFailWhenMissing(Runtime.ParseVersion(oldest.Version) >= new Version(2, 6) ? "needs a torch whose torch.load runs arbitrary pickles by default (< 2.6)" : null);
        using var pool = new WorkerPool(Timeout);
        var (path, _) = Make("forbidden_global", RealCheckpoint(pool, py, "good-for-control.pt"));
        File.Delete(Pwned);
        try
        {
            pool.Send(oldest, Ops.ConsumeCheckpoint, new() { ["case"] = "ckpt_adam", ["optimizer"] = "adam", ["mode"] = "default", ["path"] = path }, Timeout);
            Assert.True(File.Exists(Pwned), "the hostile pickle did not run even under an unrestricted torch.load: the forbidden_global case proves nothing");
        }
        finally
        {
            File.Delete(Pwned); // so the TorchSharp case never sees this control's marker
        }
    }

    private static (string Path, string[] Expected) Make(string kind, string good)
    {
        var bytes = File.ReadAllBytes(good);
        switch (kind)
        {
            case "truncated":
            {
                var path = Path.Combine(Dir(), "truncated.pt");
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                return (path, ["is truncated or damaged", "end-of-central-directory record is missing", $"the file has {bytes.Length / 2} bytes"]);
            }
            case "corrupted_entry":
            {
                // Flip one byte inside data.pkl's stored bytes: its CRC no longer matches. The
                // archive's folder is "archive" in torch 2.x and the file's stem in 1.x.
                var path = Path.Combine(Dir(), "corrupted.pt");
                int name = IndexOf(bytes, "/data.pkl"u8.ToArray());
                int header = bytes.AsSpan(0, name).LastIndexOf("PK\u0003\u0004"u8);
                int data = header + 30 + BitConverter.ToUInt16(bytes, header + 26) + BitConverter.ToUInt16(bytes, header + 28);
                bytes[data + 5] ^= 0x40;
                File.WriteAllBytes(path, bytes);
                return (path, ["data.pkl"]);
            }
            case "wrong_magic":
            {
                var path = Path.Combine(Dir(), "wrong_magic.pt");
                File.WriteAllBytes(path, Encoding.ASCII.GetBytes("GIF89a this is not a checkpoint"));
                return (path, ["is not a zip archive", "47 49 46 38", "a zip starts with 50 4b 03 04"]);
            }
            case "forbidden_global":
            {
                // __reduce__ of a malicious object: os.system("touch .../pwned").
                var p = new PickleBytes().Proto().Global("os", "system").Unicode($"touch {Path.Combine(Dir(), "pwned")}").Tuple1().Reduce().Stop();
                return (Zip("forbidden_global.pt", p.ToArray()), ["os.system"]);
            }
            case "missing_key":
            {
                var p = new PickleBytes().Proto().EmptyDict().Mark().Unicode("epoch").Int(3).SetItems().Stop();
                return (Zip("missing_key.pt", p.ToArray()), ["model_state_dict"]);
            }
            case "short_storage":
            {
                // {'model_state_dict': OrderedDict(fc1.weight = a [16, 8] float32 tensor over a 4-element storage)}
                var p = new PickleBytes().Proto().EmptyDict().Mark().Unicode("model_state_dict")
                    .Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark().Unicode("fc1.weight")
                    .Global("torch._utils", "_rebuild_tensor_v2").Mark()
                        .Mark().Unicode("storage").Global("torch", "FloatStorage").Unicode("0").Unicode("cpu").Int(4).Tuple().PersId()
                        .Int(0).Int(16).Int(8).Tuple2().Int(8).Int(1).Tuple2().False()
                        .Global("collections", "OrderedDict").EmptyTuple().Reduce()
                    .Tuple().Reduce().SetItems().SetItems().Stop();
                return (Zip("short_storage.pt", p.ToArray(), ("0", new byte[16])), ["data/0", "16, 8"]);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        int i = haystack.AsSpan().IndexOf(needle);
        Assert.True(i >= 0);
        return i;
    }

    /// <summary>Just enough of pickle protocol 2 to write hostile and malformed files by hand.</summary>
    private sealed class PickleBytes
    {
        private readonly MemoryStream _s = new();
        private PickleBytes Op(params byte[] b) { _s.Write(b); return this; }
        public PickleBytes Proto() => Op(0x80, 2);
        public PickleBytes Stop() => Op((byte)'.');
        public PickleBytes Mark() => Op((byte)'(');
        public PickleBytes EmptyDict() => Op((byte)'}');
        public PickleBytes EmptyTuple() => Op((byte)')');
        public PickleBytes Tuple() => Op((byte)'t');
        public PickleBytes Tuple1() => Op(0x85);
        public PickleBytes Tuple2() => Op(0x86);
        public PickleBytes SetItems() => Op((byte)'u');
        public PickleBytes Reduce() => Op((byte)'R');
        public PickleBytes PersId() => Op((byte)'Q');
        public PickleBytes False() => Op(0x89);
        public PickleBytes Int(byte v) => Op((byte)'K', v);
        public PickleBytes Global(string module, string name) => Op([(byte)'c', .. Encoding.ASCII.GetBytes($"{module}\n{name}\n")]);
        public PickleBytes Unicode(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            return Op([(byte)'X', .. BitConverter.GetBytes(b.Length), .. b]);
        }
        public byte[] ToArray() => _s.ToArray();
    }
}
