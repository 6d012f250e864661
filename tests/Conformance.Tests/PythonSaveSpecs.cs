using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Tests;

/// <summary>
/// Writes that never lie, for real: each PyTorch worker (the host's, and the rootfs ones, whose
/// tmpfs is mounted at the path the worker sees inside its chroot) is asked to write a state dict,
/// a TorchScript module, a checkpoint and a TorchSharp-native file onto a full disk: a one-page
/// tmpfs, so even the 7 KB checkpoint overflows it, as the 4,096-of-6,830-byte truncation did.
/// Each answer must be save_error naming the file and ENOSPC; the folder must stay empty; the
/// same worker process must answer the next request.
/// </summary>
[Trait("Category", "runtime")]
public sealed class PythonSaveSpecs
{
    [DllImport("libc", SetLastError = true)]
    private static extern uint geteuid();

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    public static TheoryData<string> PyTorchRuntimes()
    {
        var data = new TheoryData<string>();
        foreach (var id in RuntimesConfig.Load(RepoLayout.Find().RuntimesFile).Expected.Where(id => id.StartsWith(RuntimeKinds.PyTorch + "-")))
            data.Add(id);
        return data;
    }

    private static (int Code, string Out, string Err) Sh(params string[] argv) => Discovery.Run(argv, TimeSpan.FromSeconds(30));

    [SkippableTheory(Timeout = 600_000)]
    [MemberData(nameof(PyTorchRuntimes))]
    public async Task A_save_onto_a_full_disk_is_a_save_error_naming_the_file_and_ENOSPC_and_leaves_nothing(string runtimeId)
    {
        await Task.Yield();
        var suite = MatrixFixture.Suite;
        var runtime = suite.Runtimes.FirstOrDefault(r => r.Id == runtimeId && r.Available);
        MatrixFixture.SkipOrFailWhenMissing(runtime is null ? $"{runtimeId} is not available here" : null);
        Skip.If(geteuid() != 0, "mounting a tmpfs needs root");

        // The path the worker writes to, and where this process sees it (through the chroot).
        var command = runtime!.Launch!.Command;
        var chroot = command[0] == "chroot" ? command[1] : null;
        var full = Path.Combine(suite.Repo.ArtifactsDir, "tests", "tmp-full", runtimeId);
        var seen = chroot is null ? full : chroot + full;
        Directory.CreateDirectory(seen);
        if (Sh("mountpoint", "-q", seen).Code == 0) Sh("umount", seen); // left by an aborted run
        var (mounted, _, mountErr) = Sh("mount", "-t", "tmpfs", "-o", "size=4k,mode=0777", "tmpfs", seen);
        Assert.True(mounted == 0, $"mount -t tmpfs -o size=4k tmpfs {seen}: {mountErr}");
        try
        {
            using var pool = new WorkerPool(Timeout);
            var requests = new (string Op, JsonObject Args)[]
            {
                (Ops.Produce, new() { ["case"] = "lenet", ["route"] = "pickle", ["path"] = Path.Combine(full, "lenet.pickle.pt"), ["seed"] = 0 }),
                (Ops.Produce, new() { ["case"] = "lenet", ["route"] = "torchscript_script", ["path"] = Path.Combine(full, "lenet.torchscript_script.bin"), ["seed"] = 0 }),
                (Ops.ProduceCheckpoint, new() { ["case"] = "ckpt_adam", ["optimizer"] = "adam", ["path"] = Path.Combine(full, "ckpt_adam.checkpoint.pt"), ["seed"] = 0 }),
                (Ops.Produce, new() { ["case"] = "lenet", ["route"] = "torchsharp_native", ["path"] = Path.Combine(full, "lenet.torchsharp_native.bin"), ["seed"] = 0 }),
            };
            foreach (var (op, args) in requests)
            {
                var path = args["path"]!.GetValue<string>();
                var reply = pool.Send(runtime, op, args, Timeout);
                var answered = Assert.IsType<Reply.Answered>(reply); // not a crash: the worker answered
                var error = answered.Response.Error;
                Assert.True(error is not null, $"{op} {path}: status ok on a full disk: {Wire.Truncate(answered.Response.Result?.ToJsonString() ?? "", 200)}");
                Assert.Equal(ErrorKinds.SaveError, error!.Kind);
                Assert.StartsWith(path + ": ", error.Message);
                Assert.Contains("No space left on device (ENOSPC)", error.Message);
                var left = Directory.EnumerateFileSystemEntries(seen).Select(Path.GetFileName).ToList();
                Assert.True(left.Count == 0, $"after {op} {path} the full disk holds: {string.Join(", ", left)}");
            }

            // The same worker process writes the next artifact where there is room.
            var ok = Path.Combine(suite.Repo.ArtifactsDir, "tests", "python-save", runtimeId, "lenet.pickle.pt");
            Directory.CreateDirectory(Path.GetDirectoryName(chroot is null ? ok : chroot + ok)!);
            File.Delete(chroot is null ? ok : chroot + ok);
            var next = pool.Send(runtime, Ops.Produce, new() { ["case"] = "lenet", ["route"] = "pickle", ["path"] = ok, ["seed"] = 0 }, Timeout);
            Assert.True(next.Result is not null, Conformance.Orchestrator.Judgement.CellJudge.FromReply(next, null, "worker").Line);
            Assert.True(new FileInfo(chroot is null ? ok : chroot + ok).Length > 200_000);
            Assert.Equal(1, pool.Starts[runtimeId]);
        }
        finally
        {
            Sh("umount", seen);
        }
    }
}
