using TorchCheckpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// TorchSharp's own loader for its optimizer files: <c>optimizer.load_state_dict(path)</c> needs an optimizer of the
/// saved class over parameters of the saved shapes, and the file names neither shape nor dtype outside its state
/// tensors' headers. So the loader itself finds them: parameters start empty ([0], float32); each time
/// <c>Tensor.Load</c> refuses a state tensor ("Mismatched tensor data types/shape"), the header it has just read
/// (recorded by <see cref="ReadLog"/>) gives that parameter's dtype or shape, and it tries again, until the
/// whole file loads. What the loaded optimizer holds, in PyTorch's layout, is what it read.
/// </summary>
public static class OptimizerStateProbe
{
    // TorchSharp's optimizer classes by the name save_state_dict writes (GetType().Name); the learning rate is
    // a placeholder that load_state_dict overwrites with the file's options.
    private static readonly Dictionary<string, Func<IEnumerable<Parameter>, optim.Optimizer>> Factories = new()
    {
        ["SGD"] = p => optim.SGD(p, 0.01),
        ["Adam"] = p => optim.Adam(p),
        ["AdamW"] = p => optim.AdamW(p),
        ["Adamax"] = p => optim.Adamax(p),
        ["Adagrad"] = p => optim.Adagrad(p),
        ["Adadelta"] = p => optim.Adadelta(p),
        ["ASGD"] = p => optim.ASGD(p),
        ["NAdam"] = p => optim.NAdam(p),
        ["RAdam"] = p => optim.RAdam(p),
        ["RMSProp"] = p => optim.RMSProp(p),
        ["Rprop"] = p => optim.Rprop(p),
    };

    public static IEnumerable<KeyValuePair<string, Tensor>> Load(string path, out string summary)
    {
        string name;
        long groups, states;
        using (var head = new BinaryReader(File.OpenRead(path)))
        {
            name = head.ReadString();
            groups = Decode(head);
            states = Decode(head);
        }
        if (!Factories.TryGetValue(name, out var factory))
            throw new NotApplicableException($"the file names the optimizer '{name}', which TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} does not have");
        if (groups != 1) throw new NotApplicableException($"{groups} param groups: this check rebuilds an optimizer with one");
        var shapes = Enumerable.Range(0, (int)states).Select(_ => new long[] { 0 }).ToArray();
        var dtypes = Enumerable.Repeat(ScalarType.Float32, (int)states).ToArray();
        var assigned = new bool[states];
        var byHeader = new Dictionary<long, int>();
        for (int attempt = 0; attempt < 4 * states * states + 8; attempt++)
        {
            var parameters = shapes.Select((s, i) => new Parameter(zeros(s, dtypes[i]))).ToList();
            var optimizer = factory(parameters);
            using var log = new ReadLog(File.OpenRead(path));
            using var reader = new BinaryReader(log);
            try
            {
                ((OptimizerHelper)optimizer).load_state_dict(reader);
                if (log.Position != log.Length) throw new InvalidDataException($"{log.Length - log.Position} bytes after the last state, at byte {log.Position}");
                summary = $"{name}, {states} parameter state(s): shapes {string.Join(", ", shapes.Select(s => "[" + string.Join(", ", s) + "]"))}";
                return Check.FlattenPublic(PyTorchOptimizers.StateDict(optimizer));
            }
            catch (ArgumentException e) when (e.Message.StartsWith("Mismatched tensor", StringComparison.Ordinal))
            {
                var values = log.RecentValues();
                bool dtype = e.Message.Contains("data types", StringComparison.Ordinal);
                // The header just read: dtype alone, or dtype, ndim and ndim dims at the end of the recent values.
                var (start, header) = dtype ? (values[^1].Start, new[] { values[^1].Value }) : Header(values);
                if (!byHeader.TryGetValue(start, out var p))
                {
                    p = Array.IndexOf(assigned, false);
                    if (p < 0) throw new InvalidDataException($"a state tensor at byte {start} fits no parameter");
                }
                else if (!dtype && shapes[p].SequenceEqual(header[2..]))
                {
                    // This parameter already has that shape, yet the tensor is still refused: it belongs to the next one.
                    shapes[p] = [0];
                    assigned[p] = false;
                    p = Array.IndexOf(assigned, false, p + 1);
                    if (p < 0) throw new InvalidDataException($"a state tensor at byte {start} fits no parameter");
                }
                byHeader[start] = p;
                dtypes[p] = (ScalarType)header[0];
                if (!dtype)
                {
                    shapes[p] = header[2..];
                    assigned[p] = true;
                }
            }
        }
        throw new InvalidDataException("the parameters' shapes did not settle");
    }

    private static (long Start, long[] Header) Header(IReadOnlyList<(long Start, long Value)> values)
    {
        // The shortest suffix that reads as dtype, ndim, then ndim dims.
        for (int j = values.Count - 2; j >= 0; j--)
            if (values[j + 1].Value == values.Count - j - 2 && Enum.IsDefined(typeof(ScalarType), (sbyte)values[j].Value))
                return (values[j].Start, values.Skip(j).Select(v => v.Value).ToArray());
        throw new InvalidDataException("a state tensor's header could not be read");
    }

    private static long Decode(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            var b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("a LEB128 number longer than 64 bits");
    }

    /// <summary>A read-only stream that keeps the bytes read one at a time since the last wider read (LEB128 numbers, booleans).</summary>
    private sealed class ReadLog(Stream inner) : Stream
    {
        private readonly List<(long Position, byte Value)> single = [];

        /// <summary>The LEB128 numbers those bytes spell, with the offset each starts at.</summary>
        public IReadOnlyList<(long Start, long Value)> RecentValues()
        {
            var values = new List<(long, long)>();
            long value = 0, start = -1;
            int shift = 0;
            foreach (var (pos, b) in single)
            {
                if (start < 0) start = pos;
                value |= (long)(b & 0x7F) << shift;
                shift += 7;
                if (b < 0x80)
                {
                    values.Add((start, value));
                    value = 0; shift = 0; start = -1;
                }
            }
            return values;
        }

        public override int ReadByte()
        {
            var pos = inner.Position;
            var b = inner.ReadByte();
            if (b >= 0) single.Add((pos, (byte)b));
            return b;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var pos = inner.Position;
            var n = inner.Read(buffer);
            if (buffer.Length == 1 && n == 1) single.Add((pos, buffer[0]));
            else single.Clear();
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
