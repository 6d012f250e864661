using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace TorchCheckpoints;

/// <summary>
/// Pickles a value (protocol 2, torch.save's default) the way torch.save does, using only opcodes
/// and globals that both the full unpickler and torch's weights_only unpickler accept. Tensors become
/// <c>torch._utils._rebuild_tensor_v2</c> over a persistent-id storage; the storages to write are
/// collected in <see cref="Storages"/>, one per distinct tensor. No memo is written: shared
/// containers are written once per use, which torch.load reads as equal copies.
/// </summary>
internal sealed class PickleWriter
{
    private const int Batch = 1000; // SETITEMS / APPENDS batch size, as Python's pickler uses

    private readonly string _path;
    private readonly TensorBackend _backend;
    private readonly MemoryStream _out = new();
    private readonly List<(object Tensor, TensorInfo Info)> _storages = new();
    private readonly Dictionary<object, int> _byReference = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<object, int> _byMemory = new();
    private readonly HashSet<object> _open = new(ReferenceEqualityComparer.Instance);
    private readonly List<object> _trail = new();

    public PickleWriter(string path, TensorBackend backend)
    {
        _path = path;
        _backend = backend;
    }

    /// <summary>Tensors whose data go to <c>data/0</c>, <c>data/1</c>, ... in this order. Tensors
    /// sharing memory, dtype and layout (tied weights) are one storage: keyed by the backend's
    /// identity rather than by object, because TorchSharp hands out a new wrapper per access.</summary>
    public IReadOnlyList<(object Tensor, TensorInfo Info)> Storages => _storages;

    public byte[] Write(object? value)
    {
        _out.Write([0x80, 2]); // PROTO 2
        WriteValue(value);
        _out.WriteByte((byte)'.'); // STOP
        return _out.ToArray();
    }

    private void WriteValue(object? value)
    {
        switch (value)
        {
            case null:
                _out.WriteByte((byte)'N');
                break;
            case bool b:
                _out.WriteByte(b ? (byte)0x88 : (byte)0x89); // NEWTRUE / NEWFALSE
                break;
            case long or int:
                WriteInt(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case double or float:
                Span<byte> bits = stackalloc byte[9];
                bits[0] = (byte)'G'; // BINFLOAT
                BinaryPrimitives.WriteDoubleBigEndian(bits[1..], Convert.ToDouble(value, CultureInfo.InvariantCulture));
                _out.Write(bits);
                break;
            case string s:
                WriteString(s);
                break;
            case byte[] bytes:
                // Protocol 2 has no bytes opcode; Python writes _codecs.encode(text, 'latin1').
                WriteGlobal("_codecs", "encode");
                WriteString(Encoding.Latin1.GetString(bytes));
                WriteString("latin1");
                _out.WriteByte(0x86); // TUPLE2
                _out.WriteByte((byte)'R'); // REDUCE
                break;
            case PyTuple tuple:
                Enter(tuple);
                WriteTuple(tuple.Items.Count, i => WriteItem(i, tuple.Items[i]));
                Leave(tuple);
                break;
            case List<object?> list:
                Enter(list);
                _out.WriteByte((byte)']'); // EMPTY_LIST
                WriteBatches(list.Count, (byte)'e', i => WriteItem(i, list[i])); // APPENDS
                Leave(list);
                break;
            case PyDict dict:
                Enter(dict);
                if (dict.Ordered)
                {
                    WriteOrderedDictCall();
                }
                else
                {
                    _out.WriteByte((byte)'}'); // EMPTY_DICT
                }
                var entries = dict.ToList();
                WriteBatches(entries.Count, (byte)'u', i => // SETITEMS
                {
                    WriteValue(entries[i].Key);
                    WriteItem(entries[i].Key, entries[i].Value);
                });
                Leave(dict);
                break;
            case var tensor when _backend.IsTensor(tensor):
                WriteTensor(tensor);
                break;
            default:
                throw Fail($"{value.GetType().FullName} is not part of the value model " +
                    "(null, bool, long, double, string, byte[], PyTuple, List<object?>, PyDict, tensor)");
        }
    }

    /// <summary>_rebuild_tensor_v2(storage, 0, size, contiguous stride, False, OrderedDict()).</summary>
    private void WriteTensor(object tensor)
    {
        var info = _backend.Describe(tensor);
        var dtype = info.Dtype is { StorageClass.Length: > 0 } known ? known
            : throw Fail($"a tensor of dtype {info.DtypeName} cannot be saved; torch.save storages exist for " +
                string.Join(", ", TorchDtype.StorageGlobals));
        var shape = info.Shape;
        WriteGlobal("torch._utils", "_rebuild_tensor_v2");
        _out.WriteByte((byte)'('); // MARK for the argument tuple
        _out.WriteByte((byte)'('); // MARK for the persistent id
        WriteString("storage");
        WriteGlobal("torch", dtype.StorageClass);
        WriteString(StorageKey(tensor, info).ToString(CultureInfo.InvariantCulture));
        WriteString("cpu");
        WriteInt(shape.Aggregate(1L, (a, b) => a * b));
        _out.WriteByte((byte)'t'); // TUPLE
        _out.WriteByte((byte)'Q'); // BINPERSID
        WriteInt(0); // storage offset
        WriteTuple(shape.Length, i => WriteInt(shape[i]));
        var stride = TensorLayout.ContiguousStride(shape);
        WriteTuple(stride.Length, i => WriteInt(stride[i]));
        _out.WriteByte(0x89); // requires_grad: NEWFALSE
        WriteOrderedDictCall(); // backward hooks
        _out.WriteByte((byte)'t'); // TUPLE
        _out.WriteByte((byte)'R'); // REDUCE
    }

    private int StorageKey(object tensor, TensorInfo info)
    {
        if (_byReference.TryGetValue(tensor, out var key))
            return key;
        if (info.Identity is { } id && _byMemory.TryGetValue(id, out key))
        {
            _byReference.Add(tensor, key);
            return key;
        }
        key = _storages.Count;
        _storages.Add((tensor, info));
        _byReference.Add(tensor, key);
        if (info.Identity is { } newId)
            _byMemory.Add(newId, key);
        return key;
    }

    private void WriteOrderedDictCall()
    {
        WriteGlobal("collections", "OrderedDict");
        _out.WriteByte((byte)')'); // EMPTY_TUPLE
        _out.WriteByte((byte)'R'); // REDUCE
    }

    private void WriteTuple(int count, Action<int> writeItem)
    {
        if (count == 0)
        {
            _out.WriteByte((byte)')'); // EMPTY_TUPLE
            return;
        }
        if (count > 3)
            _out.WriteByte((byte)'('); // MARK
        for (int i = 0; i < count; i++)
            writeItem(i);
        _out.WriteByte(count > 3 ? (byte)'t' : (byte)(0x84 + count)); // TUPLE or TUPLE1/2/3
    }

    /// <summary>MARK, up to <see cref="Batch"/> items, then the opcode that adds them to the container below.</summary>
    private void WriteBatches(int count, byte opcode, Action<int> writeItem)
    {
        for (int start = 0; start < count; start += Batch)
        {
            _out.WriteByte((byte)'('); // MARK
            for (int i = start; i < Math.Min(count, start + Batch); i++)
                writeItem(i);
            _out.WriteByte(opcode);
        }
    }

    private void WriteInt(long value)
    {
        switch (value)
        {
            case >= 0 and <= byte.MaxValue:
                _out.WriteByte((byte)'K'); // BININT1
                _out.WriteByte((byte)value);
                break;
            case >= 0 and <= ushort.MaxValue:
                _out.WriteByte((byte)'M'); // BININT2
                _out.Write(stackalloc byte[] { (byte)value, (byte)(value >> 8) });
                break;
            case >= int.MinValue and <= int.MaxValue:
                Span<byte> int32 = stackalloc byte[5];
                int32[0] = (byte)'J'; // BININT
                BinaryPrimitives.WriteInt32LittleEndian(int32[1..], (int)value);
                _out.Write(int32);
                break;
            default:
                // LONG1: the shortest little-endian two's complement that keeps the sign.
                Span<byte> long1 = stackalloc byte[10];
                BinaryPrimitives.WriteInt64LittleEndian(long1[2..], value);
                int length = 8;
                while (length > 1 && long1[2 + length - 1] == (value < 0 ? 0xFF : 0x00)
                       && (long1[2 + length - 2] & 0x80) == (value < 0 ? 0x80 : 0x00))
                    length--;
                long1[0] = 0x8a;
                long1[1] = (byte)length;
                _out.Write(long1[..(2 + length)]);
                break;
        }
    }

    private void WriteString(string s)
    {
        byte[] utf8;
        try
        {
            utf8 = Encoding.UTF8.GetBytes(s);
        }
        catch (EncoderFallbackException)
        {
            throw Fail("a string holds an unpaired surrogate, which is not valid UTF-8");
        }
        Span<byte> header = stackalloc byte[5];
        header[0] = (byte)'X'; // BINUNICODE
        BinaryPrimitives.WriteUInt32LittleEndian(header[1..], (uint)utf8.Length);
        _out.Write(header);
        _out.Write(utf8);
    }

    private void WriteGlobal(string module, string name)
    {
        _out.WriteByte((byte)'c'); // GLOBAL
        _out.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    }

    /// <summary>Writes one element, remembering where it is for error messages.</summary>
    private void WriteItem(object where, object? value)
    {
        _trail.Add(where);
        WriteValue(value);
        _trail.RemoveAt(_trail.Count - 1);
    }

    /// <summary>Refuses a container that (directly or not) contains itself, which pickle would need the memo for.</summary>
    private void Enter(object container)
    {
        if (!_open.Add(container))
            throw Fail("the value contains itself");
    }

    private void Leave(object container) => _open.Remove(container);

    private CheckpointFormatException Fail(string detail)
    {
        var where = "$" + string.Concat(_trail.Select(step => $"[{PyDict.Describe(step)}]"));
        return new CheckpointFormatException(_path, null, $"cannot save the value at {where}: {detail}");
    }
}
