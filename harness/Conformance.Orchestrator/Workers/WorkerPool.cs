using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Conformance.Orchestrator.Runtimes;
using Conformance.Orchestrator.Vocabulary;

namespace Conformance.Orchestrator.Workers;

/// <summary>
/// One long-lived worker per runtime, started on first use and restarted after a crash or hang.
/// <paramref name="environment"/> is added to every worker's environment (the pinned thread counts).
/// Requests to one runtime are serialized; different runtimes' workers may be used from different threads.
/// </summary>
public sealed class WorkerPool(TimeSpan startTimeout, IReadOnlyDictionary<string, string>? environment = null) : IDisposable
{
    private readonly ConcurrentDictionary<string, WorkerProcess> _workers = [];
    private readonly ConcurrentDictionary<string, JsonNode?> _hellos = [];
    private readonly ConcurrentDictionary<string, object> _gates = [];

    /// <summary>Raised just before a request is written: (runtime, pid, op). Tests use it to kill a worker mid-run.</summary>
    public event Action<Runtime, int, string>? RequestStarting;

    /// <summary>The hello answer of each runtime that started at least once.</summary>
    public IReadOnlyDictionary<string, JsonNode?> Hellos => _hellos;

    /// <summary>How many times each runtime's worker was started.</summary>
    public ConcurrentDictionary<string, int> Starts { get; } = [];

    public Reply Send(Runtime runtime, string op, JsonObject? args, TimeSpan timeout)
    {
        lock (_gates.GetOrAdd(runtime.Id, _ => new object()))
        {
            if (!_workers.TryGetValue(runtime.Id, out var worker) || !worker.Alive)
            {
                worker?.Dispose();
                _workers.TryRemove(runtime.Id, out _);
                Starts.AddOrUpdate(runtime.Id, 1, (_, n) => n + 1);
                var (started, hello) = WorkerProcess.Start(runtime, startTimeout, environment);
                if (started is null)
                    return hello is Reply.Failed f ? f with { Message = "while starting: " + f.Message } : hello;
                _hellos[runtime.Id] = started.Hello;
                _workers[runtime.Id] = worker = started;
            }
            RequestStarting?.Invoke(runtime, worker.Pid, op);
            return worker.Send(op, args, timeout);
        }
    }

    /// <summary>How each runtime's last worker ended, once the pool is disposed (<see cref="WorkerProcess.Ending"/>).</summary>
    public ConcurrentDictionary<string, string> Endings { get; } = [];

    /// <summary>Shuts every worker down at once: each waits up to its grace on its own, not after the others.</summary>
    public void Dispose()
    {
        Parallel.ForEach(_workers, kv =>
        {
            kv.Value.Dispose();
            Endings[kv.Key] = kv.Value.Ending!;
        });
        _workers.Clear();
    }
}
