using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;
using Conformance.Protocol;

namespace Conformance.Orchestrator.Workers;

/// <summary>
/// One long-lived worker process. Requests go one at a time; each has a timeout. A crash, a hang or
/// a non-protocol line ends the process and comes back as <see cref="Reply.Failed"/> carrying
/// the command, the exit status (with the signal named) and the stderr tail. The pool starts a new
/// process for the next request.
/// </summary>
public sealed class WorkerProcess : IDisposable
{
    private const int StderrTailLines = 40;
    private readonly Process _process;
    private readonly LinkedList<string> _stderr = new();
    private readonly Launch _launch;
    private long _nextId = 1;

    public Runtime Runtime { get; }
    public int Pid => _process.Id;
    public bool Alive { get; private set; } = true;
    public JsonNode? Hello { get; private set; }

    private WorkerProcess(Runtime runtime, Process process)
    {
        Runtime = runtime;
        _launch = runtime.Launch!;
        _process = process;
    }

    /// <summary>Starts the worker and waits for its <c>hello</c> within <paramref name="startTimeout"/>.</summary>
    public static (WorkerProcess? Worker, Reply Hello) Start(Runtime runtime, TimeSpan startTimeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var launch = runtime.Launch ?? throw new InvalidOperationException($"runtime {runtime.Id} has no launch: {runtime.MissingReason}");
        var psi = new ProcessStartInfo(launch.Command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardInputEncoding = new UTF8Encoding(false),
        };
        foreach (var a in launch.Command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        foreach (var (k, v) in launch.Environment) psi.Environment[k] = v;
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return (null, new Reply.Failed(Reply.StartError, $"could not start worker {runtime.Id}: {e.Message}\n  command: {launch.Display()}"));
        }
        var worker = new WorkerProcess(runtime, process);
        process.ErrorDataReceived += (_, e) => worker.OnStderr(e.Data);
        process.BeginErrorReadLine();
        var hello = worker.Send(Ops.Hello, null, startTimeout);
        worker.Hello = hello.Result;
        return (worker.Alive ? worker : null, hello);
    }

    private void OnStderr(string? line)
    {
        if (line is null) return;
        lock (_stderr)
        {
            _stderr.AddLast(line);
            while (_stderr.Count > StderrTailLines) _stderr.RemoveFirst();
        }
    }

    public string StderrTail()
    {
        lock (_stderr) return string.Join("\n", _stderr);
    }

    /// <summary>Sends one request and waits for its answer at most <paramref name="timeout"/>.</summary>
    public Reply Send(string op, JsonObject? args, TimeSpan timeout)
    {
        if (!Alive) return Fail(Reply.Crash, $"worker {Runtime.Id} is no longer running");
        var id = _nextId++;
        try
        {
            _process.StandardInput.WriteLine(Wire.Encode(new Request(id, op, args)));
            _process.StandardInput.Flush();
        }
        catch (IOException)
        {
            return Died(op);
        }

        var read = _process.StandardOutput.ReadLineAsync();
        if (!read.Wait(timeout))
        {
            Kill();
            return Fail(Reply.Timeout,
                $"worker {Runtime.Id} (pid {Pid}) did not answer '{op}' within {timeout.TotalSeconds:0.#} s; killed it");
        }
        var line = read.Result;
        if (line is null) return Died(op);
        Response response;
        try
        {
            response = Wire.Decode<Response>(line);
        }
        catch (JsonException)
        {
            Kill();
            return Fail(Reply.ProtocolError,
                $"worker {Runtime.Id} wrote a line that is not a protocol response during '{op}': {Wire.Truncate(line, 300)}");
        }
        if (response.Id != id)
        {
            Kill();
            return Fail(Reply.ProtocolError, $"worker {Runtime.Id} answered request {response.Id} while {id} ('{op}') was pending");
        }
        return new Reply.Answered(response);
    }

    private Reply Died(string op)
    {
        if (!_process.WaitForExit(TimeSpan.FromSeconds(10))) Kill();
        _process.WaitForExit(); // flushes the stderr reader
        Alive = false;
        return Fail(Reply.Crash, $"worker {Runtime.Id} (pid {Pid}) died during '{op}': {DescribeExit(_process.ExitCode)}");
    }

    private Reply.Failed Fail(string kind, string message)
    {
        var tail = StderrTail();
        var text = new StringBuilder(message)
            .Append("\n  command: ").Append(_launch.Display());
        if (tail.Length > 0) text.Append("\n  stderr (last lines):\n    ").Append(tail.Replace("\n", "\n    "));
        return new Reply.Failed(kind, text.ToString());
    }

    /// <summary>
    /// .NET reports a child killed by signal N as exit code 128+N; name the signal, since
    /// "SIGSEGV" tells a reader far more than "139".
    /// </summary>
    public static string DescribeExit(int code) => code > 128 && code < 128 + 65
        ? $"killed by {SignalName(code - 128)} (exit code {code})"
        : $"exited with code {code}";

    public static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL", 5 => "SIGTRAP", 6 => "SIGABRT",
        7 => "SIGBUS", 8 => "SIGFPE", 9 => "SIGKILL", 10 => "SIGUSR1", 11 => "SIGSEGV", 12 => "SIGUSR2",
        13 => "SIGPIPE", 14 => "SIGALRM", 15 => "SIGTERM",
        _ => $"signal {signal}",
    };

    public void Kill()
    {
        Alive = false;
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>
    /// The seconds a worker has to end after <c>shutdown</c> before it is killed: over ten times the slowest
    /// exit measured here (a PyTorch worker under a busy loop on its one core; <see cref="Ending"/> says how long each took).
    /// </summary>
    public static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(10);

    /// <summary>How the process ended when it was disposed: "exited 0 after shutdown (0.05 s)" or "killed: …"; null while it runs.</summary>
    public string? Ending { get; private set; }

    public void Dispose()
    {
        if (Alive && !_process.HasExited)
        {
            // Ask politely, then insist.
            try
            {
                _process.StandardInput.WriteLine(Wire.Encode(new Request(_nextId++, Ops.Shutdown)));
                _process.StandardInput.Close();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                if (_process.WaitForExit(ShutdownGrace)) Ending = $"exited {_process.ExitCode} after shutdown ({clock.Elapsed.TotalSeconds:0.00} s)";
                else
                {
                    Kill();
                    Ending = $"killed: still running {ShutdownGrace.TotalSeconds:0} s after shutdown";
                }
            }
            catch (IOException e)
            {
                Kill();
                Ending = $"killed: shutdown could not be sent ({e.Message})";
            }
        }
        else Ending ??= "had already ended";
        Alive = false;
        _process.Dispose();
    }
}
