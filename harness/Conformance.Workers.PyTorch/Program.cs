using Conformance.Protocol;
using Python.Runtime;

// The PyTorch worker: a thin .NET host around python/torchconformance/worker/__init__.py.
//   Conformance.Workers.PyTorch --python-dll /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 --python-path REPO/python
// Claim stdout before CPython and libtorch load, so their prints go to stderr.
var channel = WorkerHost.ClaimProtocolChannel();

string? pythonDll = Option(args, "--python-dll") ?? Environment.GetEnvironmentVariable("PYTHONNET_PYDLL");
string? pythonPath = Option(args, "--python-path");
if (pythonDll is null || pythonPath is null)
{
    Console.Error.WriteLine("usage: Conformance.Workers.PyTorch --python-dll LIBPYTHON --python-path DIR");
    return 2;
}

Runtime.PythonDLL = pythonDll;
PythonEngine.Initialize();
dynamic handler;
using (Py.GIL())
{
    dynamic sys = Py.Import("sys");
    sys.path.insert(0, pythonPath);
    handler = Py.Import("torchconformance.worker");
}
PythonEngine.BeginAllowThreads();

WorkerHost.Serve(channel, line =>
{
    try
    {
        using (Py.GIL())
        {
            return (string)handler.handle_json(line);
        }
    }
    catch (PythonException e)
    {
        // handle_json never raises by design; if it does, answer rather than take the worker down.
        long id = -1;
        try { id = Wire.Decode<Request>(line).Id; } catch (System.Text.Json.JsonException) { }
        return Wire.Encode(Response.Failure(id, new WorkerError(ErrorKinds.RuntimeError, $"handler raised {e.Message}", e.StackTrace)));
    }
});
// Shut down answered (or stdin closed): end now. Returning from Main would run pythonnet's
// PythonEngine.Shutdown at process exit, which collects every Python object with torch loaded:
// 6 s with torch 1.13 and 15-16 s with 2.6 and 2.14, measured, longer than the orchestrator's 3 s
// grace, so every worker was killed, and its runtime's /tmp files left behind. The C library's exit
// still runs the .NET runtime's and libtorch's own exit handlers; every artifact is already durable
// (written, fsynced and renamed before its answer), and the protocol writer flushes each line.
Console.Error.Flush();
Exit(0);
return 0;

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

[System.Runtime.InteropServices.DllImport("libc", EntryPoint = "exit")]
static extern void Exit(int code);
