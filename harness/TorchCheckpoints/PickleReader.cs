using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace TorchCheckpoints;

/// <summary>
/// A pickle virtual machine for the data.pkl of a torch.save file (protocols 2 to 5). It never
/// imports or calls anything: each global the pickle names must be on <see cref="AllowedGlobals"/>,
/// is checked the moment it is named (so a refused pickle has built nothing), and REDUCE on an
/// allowed global is interpreted here (an OrderedDict, a tensor view over a loaded storage, bytes).
/// Only the opcodes torch.save emits are accepted; anything else fails, naming opcode and offset.
/// </summary>
internal sealed class PickleReader
{
    /// <summary>Loads the storage in record <c>data/&lt;key&gt;</c>, checked against the declared element count
    /// (null only under <see cref="Mode.Probe"/>, where nothing is loaded).</summary>
    public delegate object? StorageLoader(string key, TorchDtype dtype, long elementCount, string location);

    /// <summary>Which pickle of which format is read.</summary>
    internal enum Mode
    {
        /// <summary>A zip checkpoint's data.pkl: persistent ids of 5 fields.</summary>
        Zip,

        /// <summary>The main pickle of a legacy (torch &lt; 1.6) file: persistent ids of 6 fields, the last a storage view or None.</summary>
        Legacy,

        /// <summary>A legacy main pickle read only to learn its storages (key, dtype, count) and where it ends: nothing
        /// is loaded, tensors stay placeholders, and nothing is refused for want of data.</summary>
        Probe,

        /// <summary>One of a legacy file's small pickles (magic number, protocol version, sys_info, storage keys):
        /// no persistent ids; integers of any size (the magic number has 10 bytes) come as <see cref="BigInteger"/>.</summary>
        Header,
    }

    private const string OrderedDict = "collections.OrderedDict";
    private const string RebuildTensor = "torch._utils._rebuild_tensor_v2";
    private const string RebuildParameter = "torch._utils._rebuild_parameter";
    private const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
    private const string CodecsEncode = "_codecs.encode";

    /// <summary>Everything a torch.save pickle of tensors, containers and scalars needs, and nothing that runs code.</summary>
    public static readonly IReadOnlyList<string> AllowedGlobals =
        new[] { OrderedDict, RebuildTensor, RebuildParameter, RebuildParameterWithState, CodecsEncode }
            .Concat(TorchDtype.StorageGlobals).ToArray();

    private static readonly HashSet<string> Allowed = new(AllowedGlobals, StringComparer.Ordinal);
    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, true);

    private readonly byte[] _data;
    private readonly string _path;
    private readonly string _entry;
    private readonly string _recordPrefix;
    private readonly StorageLoader _loadStorage;
    private readonly Action? _parsed;
    private readonly Action<object>? _fillNow;
    private readonly TensorBackend _backend;
    private readonly CheckpointLimits _limits;
    private readonly Mode _mode;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    private readonly Dictionary<string, Storage> _storages = new(StringComparer.Ordinal);
    private readonly List<object> _views = new();
    // Nesting is bounded as containers are filled, not after: each container's height (1 + the
    // largest height of what it holds, a non-container counting 0; 0 when empty) is known when it is
    // put inside another, because a list or dict already inside another is never changed again
    // (torch.save never does so). Only heights of 2 and more are stored: 0 and 1 follow from the count.
    private readonly Dictionary<object, int> _heights = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<object> _placed = new(ReferenceEqualityComparer.Instance); // lists and dicts only
    private long _storageBytes;   // of every storage loaded so far
    private long _resolvedBytes;  // of the copies made for conj and neg bits
    private int _position;
    private int _opcodeOffset;
    private byte _opcode;

    public PickleReader(byte[] data, string path, string entry, TensorBackend backend, CheckpointLimits limits, StorageLoader loadStorage, Action? parsed = null,
        Action<object>? fillNow = null, int start = 0, Mode mode = Mode.Zip)
    {
        _mode = mode;
        _position = start;
        _parsed = parsed;
        _fillNow = fillNow;
        _backend = backend;
        _limits = limits;
        _data = data;
        _path = path;
        _entry = entry;
        _recordPrefix = entry.Contains('/') ? entry[..entry.LastIndexOf('/')] + "/data/" : "";
        _loadStorage = loadStorage;
    }

    /// <summary>Where the pickle's STOP ended it (the offset of the next byte), once <see cref="Load"/> has returned.</summary>
    public int End => _position;

    /// <summary>How many bytes of the buffer a failed read needed: set when the pickle ran past the end of
    /// the buffer, so that a caller holding only part of a file can read more and try again.</summary>
    public long? Needed { get; private set; }

    /// <summary>A global named by the pickle, held until REDUCE or a persistent id uses it.</summary>
    private sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }

    /// <summary>A loaded record: the 1-D tensor over it, and what it was loaded as. <see cref="Data"/> is
    /// null for a storage on the meta device, whose record is not read (and under <see cref="Mode.Probe"/>).
    /// A legacy storage view is <see cref="ElementCount"/> elements of its root <see cref="ViewOf"/>'s
    /// <see cref="Data"/>, from element <see cref="Offset"/>.</summary>
    private sealed record Storage(string Key, TorchDtype Dtype, long ElementCount, object? Data, string Location)
    {
        public long Offset { get; init; }

        public string? ViewOf { get; init; }
    }

    /// <summary>A tensor torch.load would give but this reader cannot: refused, naming the dict key,
    /// as soon as it is put in a dict (or, anywhere else, when the pickle ends).</summary>
    private sealed record Unreadable(string Reason);

    /// <summary>Runs the pickle to its STOP. On success the storages' own handles are released (the
    /// tensor views keep the memory alive); on failure every tensor made so far is disposed.</summary>
    public object? Load()
    {
        bool succeeded = false;
        try
        {
            var result = Run();
            _parsed?.Invoke(); // storages allocated up front are filled here, while they are still held
            succeeded = true;
            return result;
        }
        finally
        {
            foreach (var storage in _storages.Values)
            {
                if (storage.Data is not null && storage.ViewOf is null)
                    _backend.ReleaseStorage(storage.Data);
            }
            if (!succeeded)
            {
                foreach (var view in _views)
                    _backend.ReleaseTensor(view);
            }
        }
    }

    private object? Run()
    {
        while (true)
        {
            _opcodeOffset = _position;
            _opcode = ReadByte();
            switch (_opcode)
            {
                case 0x80: // PROTO
                    if (ReadByte() > 5)
                        throw Fail("pickle protocol above 5");
                    break;
                case 0x95: // FRAME: only a read-ahead hint; the whole pickle is in memory
                    Read(8);
                    break;
                case (byte)'.': // STOP
                    var result = Pop();
                    CheckIsValue(result);
                    return result;
                case (byte)'(': // MARK
                    if (_marks.Count >= _limits.MaxPickleDepth)
                        throw Limit(nameof(CheckpointLimits.MaxPickleDepth), _limits.MaxPickleDepth, _marks.Count + 1, "nested MARKs");
                    _marks.Add(_stack.Count);
                    break;
                case (byte)'}': // EMPTY_DICT
                    Push(new PyDict(ordered: false) { SourcePath = _path });
                    break;
                case (byte)']': // EMPTY_LIST
                    Push(new List<object?>());
                    break;
                case (byte)')': // EMPTY_TUPLE
                    Push(new PyTuple(Array.Empty<object?>()));
                    break;
                case (byte)'t': // TUPLE
                    Push(Placed(new PyTuple(PopMark())));
                    break;
                case 0x85: // TUPLE1
                case 0x86: // TUPLE2
                case 0x87: // TUPLE3
                    Push(Placed(new PyTuple(PopItems(_opcode - 0x84))));
                    break;
                case (byte)'d': // DICT
                {
                    var dict = new PyDict(ordered: false) { SourcePath = _path };
                    SetItems(dict, PopMark());
                    Push(dict);
                    break;
                }
                case (byte)'l': // LIST
                    Push(Placed(new List<object?>(PopMark())));
                    break;
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    SetItems(Peek<PyDict>("a dict"), new List<object?> { key, value });
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    SetItems(Peek<PyDict>("a dict"), items);
                    break;
                }
                case (byte)'a': // APPEND
                {
                    var value = Pop();
                    var list = Unplaced(Peek<List<object?>>("a list"));
                    list.Add(value);
                    Place(list, value);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopMark();
                    var list = Unplaced(Peek<List<object?>>("a list"));
                    list.AddRange(items);
                    foreach (var item in items)
                        Place(list, item);
                    break;
                }
                case (byte)'q': // BINPUT
                    Memoize(ReadByte());
                    break;
                case (byte)'r': // LONG_BINPUT
                    Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)));
                    break;
                case 0x94: // MEMOIZE
                    Memoize(_memo.Count);
                    break;
                case (byte)'h': // BINGET
                    Push(Recall(ReadByte()));
                    break;
                case (byte)'j': // LONG_BINGET
                    Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Read(4))));
                    break;
                case (byte)'J': // BININT
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4)));
                    break;
                case (byte)'K': // BININT1
                    Push((long)ReadByte());
                    break;
                case (byte)'M': // BININT2
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2)));
                    break;
                case 0x8a: // LONG1
                    Push(_mode == Mode.Header ? ReadBigLong1() : (object)ReadLong1());
                    break;
                case (byte)'G': // BINFLOAT
                    Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8)));
                    break;
                case (byte)'N': // NONE
                    Push(null);
                    break;
                case 0x88: // NEWTRUE
                    Push(true);
                    break;
                case 0x89: // NEWFALSE
                    Push(false);
                    break;
                case (byte)'X': // BINUNICODE
                    Push(DecodeUtf8(Read(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))));
                    break;
                case 0x8c: // SHORT_BINUNICODE
                    Push(DecodeUtf8(Read(ReadByte())));
                    break;
                case 0x8d: // BINUNICODE8
                    Push(DecodeUtf8(Read(BinaryPrimitives.ReadUInt64LittleEndian(Read(8)))));
                    break;
                case (byte)'B': // BINBYTES
                    Push(Read(BinaryPrimitives.ReadUInt32LittleEndian(Read(4))).ToArray());
                    break;
                case (byte)'C': // SHORT_BINBYTES
                    Push(Read(ReadByte()).ToArray());
                    break;
                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(CheckGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop<string>("a global's name");
                    var module = Pop<string>("a global's module");
                    Push(CheckGlobal(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop<PyTuple>("an argument tuple");
                    var callable = Pop();
                    if (callable is not Global global)
                        throw Fail($"REDUCE calls {TypeName(callable)}, which is not a callable global");
                    Push(Call(global, args));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    var target = Peek();
                    // A state_dict is an OrderedDict whose __dict__ carries _metadata (module versions);
                    // the value model keeps only the items, so that state is dropped.
                    if (target is not PyDict)
                        throw Fail($"BUILD sets the state of {TypeName(target)} to {TypeName(state)}; only a dict's state can be set (and is ignored)");
                    break;
                }
                case (byte)'Q': // BINPERSID
                    Push(PersistentLoad(Pop<PyTuple>("a persistent id tuple")));
                    break;
                default:
                    var printable = _opcode is >= 0x20 and < 0x7f ? $" '{(char)_opcode}'" : "";
                    throw new CheckpointFormatException(_path, _entry,
                        $"{_entry}: unsupported pickle opcode 0x{_opcode:x2}{printable} at offset {_opcodeOffset}; " +
                        "only the opcodes torch.save emits are read");
            }
        }
    }

    private Global CheckGlobal(string module, string name)
    {
        var global = new Global(module, name);
        if (!Allowed.Contains(global.FullName))
            throw new ForbiddenGlobalException(_path, _entry, _opcodeOffset, module, name, AllowedGlobals);
        return global;
    }

    private object? Call(Global global, PyTuple args)
    {
        switch (global.FullName)
        {
            case OrderedDict when args.Count <= 1: // OrderedDict() from torch.save, OrderedDict(pairs) from TorchSharp.PyBridge
                var ordered = new PyDict(ordered: true) { SourcePath = _path };
                if (args.Count == 1)
                    SetItems(ordered, Pairs(args[0]));
                return ordered;
            case RebuildTensor when args.Count is 6 or 7: // (storage, offset, size, stride, requires_grad, hooks[, metadata])
                return Rebuild(args);
            case RebuildParameter when args.Count == 3: // (data, requires_grad, hooks)
            case RebuildParameterWithState when args.Count == 4: // (data, requires_grad, hooks, state)
                if (args[0] is Unreadable)
                    return args[0];
                var data = args[0] is { } t && _backend.IsTensor(t) ? t : throw Fail($"argument 0 should be a tensor, not {TypeName(args[0])}");
                bool parameterGrad = Arg<bool>(args, 1, "requires_grad");
                if (parameterGrad)
                    CheckCanRequireGrad(_backend.Describe(data).Dtype, "a parameter");
                return _backend.AsParameter(data, parameterGrad);
            case CodecsEncode when args.Count == 2: // how protocol 2 spells bytes: _codecs.encode(text, 'latin1')
                var encoding = Arg<string>(args, 1, "an encoding");
                if (encoding is not ("latin1" or "latin-1"))
                    throw Fail($"_codecs.encode with encoding '{encoding}'; only latin1 (pickled bytes) is read");
                return Encoding.Latin1.GetBytes(Arg<string>(args, 0, "text"));
            default:
                throw Fail($"REDUCE calls {global.FullName} with {args.Count} arguments, which torch.save never writes");
        }
    }

    /// <summary>_rebuild_tensor_v2 as a view, so tensors that share a storage still share memory;
    /// the view is bounds-checked against the record first.</summary>
    private object Rebuild(PyTuple args)
    {
        var storage = Arg<Storage>(args, 0, "a storage");
        long offset = Arg<long>(args, 1, "a storage offset");
        var size = LongTuple(args, 2, "a size tuple");
        var stride = LongTuple(args, 3, "a stride tuple");
        bool requiresGrad = Arg<bool>(args, 4, "requires_grad");
        if (requiresGrad)
            CheckCanRequireGrad(storage.Dtype, $"a tensor over storage '{storage.Key}'");
        var shape = $"[{string.Join(", ", size)}]";
        if (size.Length > _limits.MaxRank)
            throw Limit(nameof(CheckpointLimits.MaxRank), _limits.MaxRank, size.Length, $"a tensor over storage '{storage.Key}'");
        if (size.Length != stride.Length || offset < 0 || size.Any(s => s < 0) || stride.Any(s => s < 0))
            throw Fail($"storage '{storage.Key}' is viewed with an invalid layout: shape {shape}, stride [{string.Join(", ", stride)}], offset {offset}");

        long elementSize = storage.Dtype.ElementSize;
        long present = storage.ElementCount;
        long needed;
        try
        {
            checked
            {
                long extent = offset;
                bool empty = false;
                for (int i = 0; i < size.Length; i++)
                {
                    empty |= size[i] == 0;
                    if (size[i] > 0)
                        extent += (size[i] - 1) * stride[i];
                }
                needed = empty ? offset : extent + 1;
                needed *= elementSize;
            }
        }
        catch (OverflowException)
        {
            throw Fail($"the tensor of shape {shape} over storage '{storage.Key}' is too large to address");
        }
        if (needed > present * elementSize)
            throw Fail($"storage '{storage.Key}' ({RecordOf(storage)}) has {present * elementSize} bytes, but a tensor of shape {shape} " +
                $"and dtype {storage.Dtype.Name} (storage offset {offset}, stride [{string.Join(", ", stride)}]) needs {needed} bytes");

        var (conj, neg) = args.Count == 7 ? Bits(args[6], storage) : (false, false);
        if (storage.Data is null)
            return new Unreadable($"is a tensor of shape {shape} and dtype {storage.Dtype.Name} on the 'meta' device (storage '{storage.Key}'): " +
                "torch.load gives it no data, which this reader cannot represent, so the file is refused");
        var layout = new TensorLayout(storage.Dtype, storage.Offset + offset, size, stride, requiresGrad);
        var view = _backend.CreateTensor(storage.Data, layout);
        _views.Add(view);
        if (!conj && !neg)
            return view;
        return Resolve(view, layout, storage, conj, neg);
    }

    /// <summary>torch.load refuses requires_grad on an integer or bool tensor ("only Tensors of floating
    /// point and complex dtype can require gradients"), and TorchSharp would throw its own error.</summary>
    private void CheckCanRequireGrad(TorchDtype? dtype, string what)
    {
        if (dtype is null || dtype == TorchDtype.Float32 || dtype == TorchDtype.Float64 || dtype == TorchDtype.Float16 || dtype == TorchDtype.BFloat16
            || dtype == TorchDtype.Complex64 || dtype == TorchDtype.Complex128)
            return;
        throw Fail($"{what} of dtype {dtype.Name} requires grad; only floating-point and complex tensors can (torch.load refuses it too)");
    }

    /// <summary>
    /// _rebuild_tensor_v2's metadata, as torch 2.x's set_tensor_metadata reads it: nothing when it is
    /// falsy; otherwise a dict of str keys to bool-like values, where the mere presence of 'conj' or
    /// 'neg' sets that bit (whatever the value) and other keys are ignored. torch refuses a conj bit
    /// on a tensor that is not complex.
    /// </summary>
    private (bool Conj, bool Neg) Bits(object? metadata, Storage storage)
    {
        if (metadata is null or false or 0L or 0.0 or "" or byte[] { Length: 0 } or PyTuple { Count: 0 } or List<object?> { Count: 0 } or PyDict { Count: 0 })
            return (false, false);
        if (metadata is not PyDict dict)
            throw Fail($"the metadata of a tensor over storage '{storage.Key}' is {TypeName(metadata)}; torch.load refuses anything but a dict there");
        foreach (var (key, value) in dict)
        {
            if (key is not string || value is not (null or bool or long or double))
                throw Fail($"the metadata of a tensor over storage '{storage.Key}' maps {TypeName(key)} to {TypeName(value)}; torch.load takes only str keys and bool values");
        }
        bool conj = dict.ContainsKey("conj"), neg = dict.ContainsKey("neg");
        if (conj && storage.Dtype != TorchDtype.Complex64 && storage.Dtype != TorchDtype.Complex128)
            throw Fail($"a tensor over storage '{storage.Key}' has the conj bit but dtype {storage.Dtype.Name}; torch.load fails on a conj bit that is not on a complex tensor");
        return (conj, neg);
    }

    /// <summary>
    /// The tensor torch.load gives for a view with the conj and/or neg bit: its values conjugated and/or
    /// negated, in a tensor of its own (the storage is shared with tensors that have no such bits).
    /// Values torch itself gives differently on different CPUs are refused instead (see <see cref="ConjNegBits"/>).
    /// </summary>
    private object Resolve(object view, TensorLayout layout, Storage storage, bool conj, bool neg)
    {
        var what = $"({layout.Dtype.Name}, shape [{string.Join(", ", layout.Shape)}], storage '{storage.Key}', {(conj && neg ? "conj and neg bits" : conj ? "conj bit" : "neg bit")})";
        // A view may repeat its storage's elements (a zero stride), and many views may share one
        // storage: the copies together may not outgrow the storages the file holds.
        long copy;
        try
        {
            copy = checked(layout.ElementCount * layout.Dtype.ElementSize);
        }
        catch (OverflowException)
        {
            throw Fail($"a tensor {what} is too large to copy");
        }
        if (copy > Array.MaxLength || copy > _storageBytes - _resolvedBytes)
            throw Fail($"a tensor {what} needs a copy of {copy:N0} bytes to resolve its bits; with the copies before it that is more than " +
                $"the {_storageBytes:N0} bytes of the file's storages, so the file is refused");
        _resolvedBytes += copy;
        _fillNow?.Invoke(storage.Data!);
        byte[] bytes;
        try
        {
            bytes = _backend.ContiguousBytes(view);
        }
        catch (NotSupportedException e)
        {
            throw Fail($"a tensor {what} must be conjugated or negated as torch.load does, which {_backend.GetType().Name} cannot: {e.Message}");
        }
        if (ConjNegBits.Apply(bytes, layout.Dtype, conj, neg) is { } problem)
            return new Unreadable($"{what} {problem}");
        var resolved = _backend.FromContiguousBytes(layout.Dtype, layout.Shape, bytes, layout.RequiresGrad);
        // By reference: a backend's tensor may define Equals over its values (TorchSharp's does).
        _views[_views.FindLastIndex(v => ReferenceEquals(v, view))] = resolved;
        _backend.ReleaseTensor(view);
        return resolved;
    }

    /// <summary>('storage', torch.XStorage, key, location, numel): the record <c>data/key</c>, loaded
    /// once per key onto the CPU whatever the location says, except 'meta', which is not read (torch
    /// gives its tensors no data; they are refused where they are used). A legacy file's ids have a
    /// sixth field, view_metadata: None, or (view_key, offset, size) naming a view of the storage
    /// (in elements), which torch.load keeps by view_key as it keeps storages by key.</summary>
    private Storage PersistentLoad(PyTuple id)
    {
        if (_mode == Mode.Header)
            throw Fail($"persistent id {Describe(id)} in a pickle where torch.save writes none");
        bool legacy = _mode != Mode.Zip;
        if (legacy && id.Count > 0 && id[0] is "module")
            throw Fail($"persistent id {Describe(id)}: the class and source code of a pickled nn.Module (a whole model saved by torch < 1.6), " +
                "which torch.load(weights_only=True) refuses too; save model.state_dict() instead");
        int fields = legacy ? 6 : 5;
        var shape = legacy ? "('storage', torch.<Type>Storage, key, location, numel, view_metadata)" : "('storage', torch.<Type>Storage, key, location, numel)";
        if (id.Count != fields || id[0] is not "storage" || id[1] is not Global { Module: "torch" } storageClass
            || TorchDtype.FromStorageClass(storageClass.Name) is not { } dtype || id[2] is not string key
            || id[3] is not string location || id[4] is not long numel)
            throw Fail($"persistent id {Describe(id)} is not {shape}");
        if (numel < 0)
            throw Fail($"storage '{key}' declares {numel} elements");
        if (_storages.TryGetValue(key, out var root))
        {
            if (root.ViewOf is not null)
                throw Fail($"storage '{key}' is used both as a view of storage '{root.ViewOf}' and as a storage of its own");
            if (root.Dtype != dtype || root.ElementCount != numel)
                throw Fail($"storage '{key}' is used both as {root.ElementCount} x {root.Dtype.Name} and as {numel} x {dtype.Name}");
        }
        else
        {
            // torch.load puts a storage tagged 'meta' on the meta device, whatever its record holds.
            var data = _mode == Mode.Probe || location != "meta" ? _loadStorage(key, dtype, numel, location) : null;
            root = new Storage(key, dtype, numel, data, location);
            if (root.Data is not null)
                _storageBytes += numel * dtype.ElementSize;
            _storages.Add(key, root);
        }
        if (!legacy || id[5] is null)
            return root;
        if (id[5] is not PyTuple { Count: 3 } view || view[0] is not string viewKey || view[1] is not long viewOffset || view[2] is not long viewSize)
            throw Fail($"the view_metadata of storage '{key}' is {TypeName(id[5])}{(id[5] is PyTuple t ? " " + Describe(t) : "")}, not None or (view_key, offset, size)");
        if (viewOffset < 0 || viewSize < 0 || viewOffset > numel - viewSize)
            throw Fail($"storage '{key}' ({numel} x {dtype.Name}) is viewed as '{viewKey}' from element {viewOffset} for {viewSize} elements, past its end");
        if (_storages.TryGetValue(viewKey, out var known))
        {
            // torch.load gives the object it already holds under that key; one that is not this view of this storage is refused.
            if (!ReferenceEquals(known, root) && (known.ViewOf != key || known.Offset != root.Offset + viewOffset || known.ElementCount != viewSize || known.Dtype != dtype))
                throw Fail($"storage view '{viewKey}' is declared twice, differently (as a view of storage '{key}' from element {viewOffset} for {viewSize} elements, " +
                    $"and before as {(known.ViewOf is null ? "a storage of its own" : $"a view of storage '{known.ViewOf}' from element {known.Offset} for {known.ElementCount} elements")})");
            return known;
        }
        var storage = new Storage(viewKey, dtype, viewSize, root.Data, location) { Offset = root.Offset + viewOffset, ViewOf = key };
        _storages.Add(viewKey, storage);
        return storage;
    }

    /// <summary>Where a storage's bytes are, for messages.</summary>
    private string RecordOf(Storage storage) =>
        storage.ViewOf is not null ? $"a view of storage '{storage.ViewOf}' from element {storage.Offset}"
        : _mode == Mode.Zip ? $"record {_recordPrefix}{storage.Key}"
        : "a storage record of the legacy file";

    private void SetItems(PyDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0)
            throw Fail($"{items.Count} items left for a dict, which takes key-value pairs");
        Unplaced(dict);
        for (int i = 0; i < items.Count; i += 2)
        {
            if (items[i] is not (string or long))
                throw Fail($"a dict key is {TypeName(items[i])}; only str and int keys are read");
            if (items[i + 1] is Unreadable unreadable && _mode != Mode.Probe)
                throw Fail($"key {(items[i] is string s ? $"'{s}'" : items[i])} {unreadable.Reason}");
            dict[items[i]!] = items[i + 1];
            Place(dict, items[i + 1]);
        }
    }

    /// <summary>Records that <paramref name="child"/> is inside <paramref name="parent"/>, and refuses
    /// the nesting past <see cref="CheckpointLimits.MaxPickleDepth"/> now, before anything deeper is built.</summary>
    private void Place(object parent, object? child)
    {
        if (child is PyDict or List<object?>)
            _placed.Add(child);
        int height = Height(child) + 1;
        if (height <= Height(parent))
            return;
        if (height > _limits.MaxPickleDepth)
            throw Limit(nameof(CheckpointLimits.MaxPickleDepth), _limits.MaxPickleDepth, height, "containers nested in containers");
        if (height >= 2)
            _heights[parent] = height;
    }

    private int Height(object? value) =>
        _heights.TryGetValue(value ?? this, out int height) ? height
        : value switch
        {
            PyDict dict => dict.Count > 0 ? 1 : 0,
            List<object?> list => list.Count > 0 ? 1 : 0,
            PyTuple tuple => tuple.Count > 0 ? 1 : 0,
            _ => 0,
        };

    /// <summary>A container just made from its items: each is placed inside it.</summary>
    private T Placed<T>(T container) where T : class
    {
        IEnumerable<object?> items = container switch
        {
            PyTuple tuple => tuple.Items,
            List<object?> list => list,
            PyDict dict => dict.Select(e => e.Value),
            _ => Array.Empty<object?>(),
        };
        foreach (var item in items)
            Place(container, item);
        return container;
    }

    /// <summary>A container about to be changed must not be inside another yet, or the depth of what
    /// holds it would change after it was checked.</summary>
    private T Unplaced<T>(T container) where T : class =>
        _placed.Contains(container)
            ? throw Fail($"{TypeName(container)} that is already inside another container is changed; torch.save never writes that, " +
                "and the nesting it makes could not be bounded while reading, so the file is refused")
            : container;

    /// <summary>The flattened key-value items of OrderedDict's argument: a dict, or a sequence of pairs.</summary>
    private List<object?> Pairs(object? source)
    {
        if (source is PyDict dict)
            return dict.SelectMany(e => new[] { e.Key, e.Value }).ToList();
        var items = source switch
        {
            PyTuple tuple => tuple.Items,
            List<object?> list => list,
            _ => throw Fail($"OrderedDict is called with {TypeName(source)}; a dict or a sequence of pairs was expected"),
        };
        return items.SelectMany(item => item switch
        {
            PyTuple { Count: 2 } pair => pair.Items,
            List<object?> { Count: 2 } pair => pair,
            _ => throw Fail($"OrderedDict is called with an item that is {TypeName(item)}, not a key-value pair"),
        }).ToList();
    }

    /// <summary>Makes sure no pickle-internal object (a global, a bare storage) is part of the result.</summary>
    private void CheckIsValue(object? result)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<(object? Value, int Depth)>();
        pending.Push((result, 0));
        while (pending.Count > 0)
        {
            var (value, depth) = pending.Pop();
            if (depth > _limits.MaxPickleDepth)
                throw Limit(nameof(CheckpointLimits.MaxPickleDepth), _limits.MaxPickleDepth, depth, "containers nested in containers");
            if (value is Unreadable unreadable && _mode != Mode.Probe)
                throw Fail($"a tensor in the result {unreadable.Reason}");
            if (value is Global or Storage)
                throw Fail($"the result contains {TypeName(value)} as a value, which the value model cannot hold");
            if (value is null || !seen.Add(value))
                continue;
            IEnumerable<object?> children = value switch
            {
                PyDict dict => dict.Select(e => e.Value),
                List<object?> list => list,
                PyTuple tuple => tuple.Items,
                _ => Array.Empty<object?>(),
            };
            foreach (var child in children)
                pending.Push((child, depth + 1));
        }
    }

    private T Arg<T>(PyTuple args, int index, string what) =>
        args[index] is T value ? value : throw Fail($"argument {index} should be {what}, not {TypeName(args[index])}");

    private long[] LongTuple(PyTuple args, int index, string what)
    {
        var tuple = Arg<PyTuple>(args, index, what);
        return tuple.Items.Select(item => item is long n ? n : throw Fail($"argument {index} should be {what} of ints, not {Describe(tuple)}")).ToArray();
    }

    private long ReadLong1()
    {
        var bytes = Read(ReadByte());
        if (bytes.Length > 8)
            throw Fail($"an integer of {bytes.Length} bytes, which does not fit in 64 bits");
        long value = 0;
        for (int i = bytes.Length - 1; i >= 0; i--)
            value = (value << 8) | bytes[i];
        int unused = 64 - 8 * bytes.Length;
        return unused is 0 or 64 ? value : (value << unused) >> unused; // sign-extend two's complement
    }

    /// <summary>LONG1 of any length, as a Python int: a legacy file's magic number has 10 bytes.</summary>
    private BigInteger ReadBigLong1() => new(Read(ReadByte()), isUnsigned: false, isBigEndian: false);

    private string DecodeUtf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Fail("a string that is not valid UTF-8");
        }
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0)
        {
            Needed = (long)_data.Length + 1;
            throw Fail("the pickle ends inside a GLOBAL name");
        }
        var line = Encoding.UTF8.GetString(_data, _position, end - _position);
        _position = end + 1;
        return line;
    }

    private byte ReadByte() => Read(1)[0];

    private ReadOnlySpan<byte> Read(ulong count)
    {
        if (count > (ulong)(_data.Length - _position))
        {
            Needed = (long)Math.Min((ulong)_position + count, long.MaxValue);
            throw Fail($"the pickle ends early: {count} bytes are needed at offset {_position}, {_data.Length - _position} are left");
        }
        var span = _data.AsSpan(_position, (int)count);
        _position += (int)count;
        return span;
    }

    private object? Recall(long index) =>
        _memo.TryGetValue(index, out var value) ? value : throw Fail($"memo entry {index} was never stored");

    private void Push(object? value)
    {
        if (_stack.Count >= _limits.MaxStackItems)
            throw Limit(nameof(CheckpointLimits.MaxStackItems), _limits.MaxStackItems, _stack.Count + 1L, "values on the pickle stack");
        _stack.Add(value);
    }

    private void Memoize(long index)
    {
        if (!_memo.ContainsKey(index) && _memo.Count >= _limits.MaxMemoEntries)
            throw Limit(nameof(CheckpointLimits.MaxMemoEntries), _limits.MaxMemoEntries, _memo.Count + 1L, "the pickle's memo");
        _memo[index] = Peek();
    }

    private int StackBase => _marks.Count == 0 ? 0 : _marks[^1];

    private object? Pop()
    {
        if (_stack.Count <= StackBase)
            throw Fail("the pickle stack is empty");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private T Pop<T>(string what) => Pop() is T value ? value : throw Fail($"expected {what} on the stack");

    private object? Peek()
    {
        if (_stack.Count <= StackBase)
            throw Fail("the pickle stack is empty");
        return _stack[^1];
    }

    private T Peek<T>(string what) where T : class =>
        Peek() as T ?? throw Fail($"expected {what} on the stack, found {TypeName(Peek())}");

    private List<object?> PopItems(int count)
    {
        if (_stack.Count - StackBase < count)
            throw Fail("the pickle stack is empty");
        var items = _stack.GetRange(_stack.Count - count, count);
        _stack.RemoveRange(_stack.Count - count, count);
        return items;
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0)
            throw Fail("no MARK to pop to");
        int mark = _marks[^1];
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        _marks.RemoveAt(_marks.Count - 1);
        return items;
    }

    private string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "a bool",
        long => "an int",
        double => "a float",
        string => "a str",
        byte[] => "bytes",
        PyTuple => "a tuple",
        List<object?> => "a list",
        PyDict { Ordered: true } => "an OrderedDict",
        PyDict => "a dict",
        _ when _backend.IsTensor(value) => "a tensor",
        Storage s => $"storage '{s.Key}'",
        Global g => $"the global {g.FullName}",
        _ => value.GetType().Name,
    };

    private string Describe(PyTuple tuple) => $"({string.Join(", ", tuple.Items.Select(i => i is string s ? $"'{s}'" : TypeName(i)))})";

    private CheckpointFormatException Fail(string detail) =>
        new(_path, _entry, $"{_entry}: {detail} (pickle opcode 0x{_opcode:x2} at offset {_opcodeOffset})");

    private CheckpointLimitException Limit(string limit, long allowed, long asked, string what) =>
        new(_path, _entry, limit, allowed, asked, $"{_entry}: {what} (pickle opcode 0x{_opcode:x2} at offset {_opcodeOffset})");
}
