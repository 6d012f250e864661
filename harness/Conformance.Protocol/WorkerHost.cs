using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Conformance.Protocol;

/// <summary>
/// The worker side of the channel. It claims the process's stdout for the protocol before any
/// torch code runs: fd 1 is duplicated to a private descriptor that carries only protocol lines, and
/// fd 1 itself is pointed at stderr, so a stray print from Python, libtorch or a native warning can
/// never corrupt the channel.
/// </summary>
public static class WorkerHost
{
    [DllImport("libc", SetLastError = true)]
    private static extern int dup(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int dup2(int oldfd, int newfd);

    /// <summary>Moves stdout aside and returns the stream that carries protocol lines.</summary>
    public static Stream ClaimProtocolChannel()
    {
        Console.Out.Flush();
        int channel = dup(1);
        if (channel < 0) throw new IOException($"dup(1) failed: errno {Marshal.GetLastWin32Error()}");
        if (dup2(2, 1) < 0) throw new IOException($"dup2(2, 1) failed: errno {Marshal.GetLastWin32Error()}");
        // Managed prints go to stderr too.
        Console.SetOut(new StreamWriter(Console.OpenStandardError()) { AutoFlush = true });
        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(channel, ownsHandle: true);
        return new FileStream(handle, FileAccess.Write, bufferSize: 1);
    }

    /// <summary>
    /// Serves requests line by line until stdin closes or a shutdown request arrives.
    /// <paramref name="handleLine"/> gets a raw request line and returns a raw response line; it
    /// must not throw (use <see cref="Serve(Stream, Func{Request, Response})"/> for typed handlers).
    /// </summary>
    public static void Serve(Stream channel, Func<string, string> handleLine)
    {
        var writer = new StreamWriter(channel, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        var reader = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            if (line.Length == 0) continue;
            string reply = handleLine(line);
            writer.WriteLine(reply);
            if (IsShutdown(line)) break;
        }
    }

    /// <summary>Typed variant: decodes each request, runs <paramref name="handler"/>, encodes its answer.</summary>
    public static void Serve(Stream channel, Func<Request, Response> handler) =>
        Serve(channel, line => Wire.Encode(HandleTyped(line, handler)));

    private static Response HandleTyped(string line, Func<Request, Response> handler)
    {
        Request request;
        try
        {
            request = Wire.Decode<Request>(line);
        }
        catch (JsonException e)
        {
            return Response.Failure(-1, new WorkerError(ErrorKinds.BadRequest, $"request is not valid JSON: {e.Message}"));
        }
        try
        {
            return handler(request);
        }
        catch (Exception e)
        {
            return Response.Failure(request.Id, new WorkerError(ErrorKinds.RuntimeError, $"{e.GetType().Name}: {e.Message}", e.ToString()));
        }
    }

    private static bool IsShutdown(string line)
    {
        try
        {
            return Wire.Decode<Request>(line).Op == Ops.Shutdown;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
