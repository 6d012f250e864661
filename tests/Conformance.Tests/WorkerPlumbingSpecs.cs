using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Orchestrator.Workers;
using Conformance.Protocol;

namespace Conformance.Tests;

/// <summary>The process plumbing, against the dummy worker: crash, hang, garbage, stray prints, slow start.</summary>
[Trait("Category", "runtime")]
public sealed class WorkerPlumbingSpecs
{
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(20);

    private static Runtime Dummy(params string[] extra)
    {
        var repo = RepoLayout.Find();
        var dll = Path.Combine(repo.Root, "tests", "Conformance.Tests.Dummy", "bin", TestPaths.Configuration, "net10.0", "Conformance.Tests.Dummy.dll");
        Assert.True(File.Exists(dll), $"dummy worker not built at {dll}");
        return new Runtime("dummy-0.0", RuntimeKinds.Dummy, "0.0", "cpu", new Launch(["dotnet", dll, .. extra]));
    }

    [Fact(Timeout = 60_000)]
    public async Task I_can_send_a_request_and_get_its_answer()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var reply = pool.Send(Dummy(), "echo", new() { ["x"] = 42 }, Quick);
        Assert.Equal(42, reply.Result?["args"]?["x"]?.GetValue<int>());
        Assert.Equal("dummy", pool.Hellos["dummy-0.0"]?["kind"]?.GetValue<string>());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(11, "SIGSEGV")]
    [InlineData(9, "SIGKILL")]
    [InlineData(6, "SIGABRT")]
    public async Task A_worker_that_dies_by_a_signal_fails_the_request_naming_the_signal_and_the_next_request_gets_a_new_worker(int signal, string name)
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var dummy = Dummy();
        pool.Send(dummy, "echo", null, Quick);
        var reply = pool.Send(dummy, "crash", new() { ["signal"] = signal }, Quick);
        var failed = Assert.IsType<Reply.Failed>(reply);
        Assert.Equal(Reply.Crash, failed.Kind);
        Assert.Contains($"killed by {name}", failed.Message);
        Assert.Contains("command: dotnet", failed.Message);
        Assert.NotNull(pool.Send(dummy, "echo", null, Quick).Result);
        Assert.Equal(2, pool.Starts["dummy-0.0"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_that_exits_reports_its_exit_code()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var failed = Assert.IsType<Reply.Failed>(pool.Send(Dummy(), "exit", new() { ["code"] = 3 }, Quick));
        Assert.Contains("exited with code 3", failed.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_hung_worker_times_out_is_killed_and_replaced()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var dummy = Dummy();
        var failed = Assert.IsType<Reply.Failed>(pool.Send(dummy, "hang", null, TimeSpan.FromSeconds(1)));
        Assert.Equal(Reply.Timeout, failed.Kind);
        Assert.Contains("did not answer 'hang' within 1 s; killed it", failed.Message);
        Assert.NotNull(pool.Send(dummy, "echo", null, Quick).Result);
    }

    [Fact(Timeout = 60_000)]
    public async Task Garbage_on_the_channel_is_a_protocol_error_that_quotes_the_line()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var failed = Assert.IsType<Reply.Failed>(pool.Send(Dummy(), "garbage", null, Quick));
        Assert.Equal(Reply.ProtocolError, failed.Kind);
        Assert.Contains("this is not JSON {{{", failed.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task Stray_prints_to_stdout_land_on_stderr_and_leave_the_channel_intact()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var dummy = Dummy();
        Assert.NotNull(pool.Send(dummy, "stray", null, Quick).Result);
        // The stray writes surface in the stderr tail a later failure carries.
        var failed = Assert.IsType<Reply.Failed>(pool.Send(dummy, "exit", new() { ["code"] = 5 }, Quick));
        Assert.Contains("stray managed print", failed.Message);
        Assert.Contains("stray native write to fd 1", failed.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_slow_starting_worker_is_waited_for_up_to_the_start_timeout()
    {
        await Task.Yield();
        using (var patient = new WorkerPool(Quick))
            Assert.NotNull(patient.Send(Dummy("--start-delay-ms", "1500"), "echo", null, Quick).Result);
        using var impatient = new WorkerPool(TimeSpan.FromMilliseconds(300));
        var failed = Assert.IsType<Reply.Failed>(impatient.Send(Dummy("--start-delay-ms", "5000"), "echo", null, Quick));
        Assert.StartsWith("while starting: worker dummy-0.0", failed.Message);
        Assert.Contains("did not answer 'hello'", failed.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_that_cannot_be_started_names_the_command()
    {
        await Task.Yield();
        using var pool = new WorkerPool(Quick);
        var runtime = new Runtime("dummy-0.0", RuntimeKinds.Dummy, "0.0", "cpu", new Launch("/nonexistent/worker", "--flag"));
        var failed = Assert.IsType<Reply.Failed>(pool.Send(runtime, "echo", null, Quick));
        Assert.Equal(Reply.StartError, failed.Kind);
        Assert.Contains("/nonexistent/worker --flag", failed.Message);
    }
}
