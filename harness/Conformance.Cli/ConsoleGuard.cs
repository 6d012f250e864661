using System.Text;
using Conformance.Protocol;
using Conformance.Files;

namespace Conformance.Cli;

/// <summary>
/// Standard output and error that cannot take the process down. Redirected into a file on a full
/// disk, a write to them throws IOException; unhandled (or thrown again by the handler that tries to
/// print it) that ended the CLI with SIGABRT, exit 134, after the summary line and before the
/// report. Here a failed write is remembered, the rest of that stream's output is dropped, and the
/// command runs on: its report is written, and the exit code says the output was lost (1).
/// </summary>
public sealed class ConsoleGuard
{
    private readonly GuardedWriter _out;
    private readonly GuardedWriter _err;

    private ConsoleGuard()
    {
        _out = new GuardedWriter(Console.Out, "standard output");
        _err = new GuardedWriter(Console.Error, "standard error");
        Console.SetOut(_out);
        Console.SetError(_err);
    }

    public static ConsoleGuard Install() => new();

    /// <summary>The first failure of each stream, e.g. "standard output: No space left on device (ENOSPC): …".</summary>
    public IEnumerable<string> Failures => new[] { _out.Failure, _err.Failure }.OfType<string>();

    /// <summary>Says (on stderr, where it still can) which output was lost; true when any was.</summary>
    public bool ReportFailures()
    {
        _out.SafeFlush();
        _err.SafeFlush();
        var failures = Failures.ToList();
        foreach (var f in failures) _err.WriteLine($"error: could not write to {f}");
        _err.SafeFlush();
        return failures.Count > 0;
    }

    private sealed class GuardedWriter(TextWriter inner, string name) : TextWriter
    {
        public string? Failure { get; private set; }
        public override Encoding Encoding => inner.Encoding;
        public override IFormatProvider FormatProvider => inner.FormatProvider;
        [System.Diagnostics.CodeAnalysis.AllowNull]
        public override string NewLine { get => inner.NewLine; set => inner.NewLine = value; }

        private void Guard(Action write)
        {
            if (Failure is not null) return;
            try { write(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                Failure = $"{name}: {Errno.Cause(e)}";
            }
        }

        public void SafeFlush() => Guard(inner.Flush);
        public override void Write(char value) => Guard(() => inner.Write(value));
        public override void Write(string? value) => Guard(() => inner.Write(value));
        public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));
        public override void Write(ReadOnlySpan<char> buffer)
        {
            var copy = buffer.ToArray();
            Guard(() => inner.Write(copy));
        }
        public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));
        public override void WriteLine() => Guard(inner.WriteLine);
        public override void Flush() => Guard(inner.Flush);
    }
}
