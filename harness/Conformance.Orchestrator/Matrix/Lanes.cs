using System.Collections.Concurrent;

namespace Conformance.Orchestrator.Matrix;

/// <summary>
/// One sequential lane per runtime: a runtime's worker serves one request at a time, but different
/// runtimes' workers are separate processes and can work at once. Work posted from inside a lane
/// (the consumers of an artifact just produced) joins the end of its own lane, never waits on
/// another lane, so no lane can block another. Disposing waits until every posted item has run.
/// Without <c>parallel</c> every item runs at once on the caller's thread, in the order posted.
/// </summary>
public sealed class Lanes(bool parallel) : IDisposable
{
    private readonly ConcurrentDictionary<string, BlockingCollection<Action>> _queues = [];
    private readonly List<Thread> _threads = [];
    private readonly object _gate = new();
    private int _pending;

    public void Post(string lane, Action work)
    {
        if (!parallel) { work(); return; }
        Interlocked.Increment(ref _pending);
        BlockingCollection<Action> queue;
        // Under a lock: GetOrAdd may run its factory twice, and a second lane thread would never end.
        lock (_threads)
            if (!_queues.TryGetValue(lane, out queue!)) _queues[lane] = queue = StartLane(lane);
        queue.Add(work);
    }

    private BlockingCollection<Action> StartLane(string name)
    {
        var queue = new BlockingCollection<Action>();
        var thread = new Thread(() =>
        {
            foreach (var work in queue.GetConsumingEnumerable())
            {
                // Work items record their own failures; this only keeps a bug from ending the process.
                try { work(); }
                catch (Exception e)
                {
                    // Even when stderr itself cannot be written (a full disk): an exception leaving a thread aborts the process.
                    try { Console.Error.WriteLine($"lane {name}: {e}"); }
                    catch (Exception) { }
                }
                finally
                {
                    if (Interlocked.Decrement(ref _pending) == 0) lock (_gate) Monitor.PulseAll(_gate);
                }
            }
        }) { IsBackground = true, Name = "lane " + name };
        _threads.Add(thread);
        thread.Start();
        return queue;
    }

    public void Dispose()
    {
        lock (_gate)
            while (Volatile.Read(ref _pending) > 0) Monitor.Wait(_gate, 200);
        foreach (var q in _queues.Values) q.CompleteAdding();
        lock (_threads) foreach (var t in _threads) t.Join();
    }
}
