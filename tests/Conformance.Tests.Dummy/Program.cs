using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Conformance.Protocol;

// Conformance.Tests.Dummy [--start-delay-ms N]
// Ops: hello, echo, crash {signal}, exit {code}, hang, garbage, stray (prints to stdout, then answers).
int delay = args.Length == 2 && args[0] == "--start-delay-ms" ? int.Parse(args[1]) : 0;
var channel = WorkerHost.ClaimProtocolChannel();
if (delay > 0) Thread.Sleep(delay);

WorkerHost.Serve(channel, line =>
{
    var request = Wire.Decode<Request>(line);
    var a = request.Args ?? new JsonObject();
    switch (request.Op)
    {
        case "crash":
            // The .NET runtime handles SIGSEGV and SIGABRT itself; restore the default action so the
            // signal ends the process as it would end a native worker.
            int signal = a["signal"]?.GetValue<int>() ?? 11;
            Native.signal(signal, 0);
            Native.kill(Environment.ProcessId, signal);
            Thread.Sleep(Timeout.Infinite);
            break;
        case "exit":
            Environment.Exit(a["code"]?.GetValue<int>() ?? 3);
            break;
        case "hang":
            Thread.Sleep(Timeout.Infinite);
            break;
        case "garbage":
            return "this is not JSON {{{";
        case "stray":
            // What Python's print or a native warning would do: all of it must land on stderr.
            Console.WriteLine("stray managed print");
            var bytes = Encoding.ASCII.GetBytes("stray native write to fd 1\n");
            Native.write(1, bytes, bytes.Length);
            break;
    }
    var result = request.Op == Ops.Hello
        ? new JsonObject { ["kind"] = "dummy", ["version"] = "0.0", ["pid"] = Environment.ProcessId }
        : new JsonObject { ["op"] = request.Op, ["args"] = a.DeepClone() };
    return Wire.Encode(Response.Success(request.Id, result));
});
return 0;

static class Native
{
    [DllImport("libc")] public static extern int kill(int pid, int sig);
    [DllImport("libc")] public static extern nint signal(int sig, nint handler);
    [DllImport("libc")] public static extern nint write(int fd, byte[] buf, nint count);
}
