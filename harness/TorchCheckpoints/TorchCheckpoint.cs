using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace TorchCheckpoints;

/// <summary>
/// Reads and writes PyTorch's torch.save format (torch >= 1.6: a zip holding <c>data.pkl</c>, a
/// pickle, and one record per tensor storage), so that .NET exchanges checkpoints with PyTorch
/// without Python. Also reads the legacy format of torch &lt; 1.6 (<c>_use_new_zipfile_serialization=False</c>:
/// pickles followed by the raw storages), as torch.load does; it always writes the zip format. Values follow the model in PyValues.cs: dicts are <see cref="PyDict"/>, tuples
/// <see cref="PyTuple"/>, lists <c>List&lt;object?&gt;</c>, tensors the backend's (TorchSharp's by default).
/// </summary>
/// <example>
/// <code>
/// var checkpoint = TorchCheckpoint.Load("checkpoint.pt");                   // torch.load: a typed tree
/// model.load_state_dict(checkpoint["model_state_dict"].AsStateDict());      // strict, PyTorch's wording
/// var optimizer = PyTorchOptimizers.Load("Adam", model.parameters(), checkpoint["optimizer_state_dict"].AsDict());
/// var edited = TorchCheckpoint.LoadDict("checkpoint.pt");                   // a dict to edit
/// edited["epoch"] = edited.Int("epoch") + 1;
/// TorchCheckpoint.Save("checkpoint.pt", edited);                            // torch.save
/// </code>
/// </example>
public static class TorchCheckpoint
{
    /// <summary>The folder torch >= 2 puts every record in; torch.load accepts any one folder name.</summary>
    private const string Folder = "archive/";

    /// <summary>
    /// Reads a torch.save file into TorchSharp tensors on the CPU, as views of their storages, so
    /// tensors that shared a storage when saved (slices, tied weights) share memory again. The
    /// pickle is run by a restricted reader that never executes code: a global outside its allowlist
    /// raises <see cref="ForbiddenGlobalException"/>. Any other problem raises
    /// <see cref="CheckpointFormatException"/>, naming the file and entry, and a file asking for more
    /// than <paramref name="limits"/> allow raises <see cref="CheckpointLimitException"/> before
    /// allocating it.
    /// </summary>
    /// <returns>The file's top-level value as a typed tree (<see cref="CheckpointValue"/>): <c>checkpoint["epoch"].AsInt()</c>, <c>checkpoint["model_state_dict"].AsStateDict()</c>.</returns>
    public static CheckpointValue Load(string path, CheckpointLimits? limits = null) =>
        new(LoadObject(path, TorchSharpTensors.Instance, limits), path);

    /// <summary>
    /// Reads a torch.save file whose top level is a dict (a training checkpoint, a state dict), with
    /// TorchSharp tensors; anything else raises <see cref="CheckpointFormatException"/> naming what it is.
    /// Its typed accessors (<see cref="PyDict.Dict"/>, <see cref="PyDict.Int"/>, <see cref="PyDict.Float"/>, …) need no casts.
    /// </summary>
    public static PyDict LoadDict(string path, CheckpointLimits? limits = null) => AsDict(LoadObject(path, TorchSharpTensors.Instance, limits), path);

    /// <summary><see cref="LoadDict"/> with the tensors memory-mapped, as <see cref="LoadMapped"/>.</summary>
    public static PyDict LoadMappedDict(string path, bool verifyCrc = true, CheckpointLimits? limits = null) => AsDict(LoadMapped(path, verifyCrc, limits).Value, path);

    /// <summary>A state dict file as an ordered name → tensor map (<see cref="StateDict.Load"/>).</summary>
    public static StateDict LoadStateDict(string path, CheckpointLimits? limits = null) => StateDict.Load(path, limits);

    internal static PyDict AsDict(object? value, string path) =>
        value as PyDict ?? throw new CheckpointFormatException(path, null, $"holds {PyDict.Kind(value)} at its top level, not a dict");

    /// <summary>
    /// Reads a torch.save file with its tensors backed by a private memory map of the file, as
    /// <c>torch.load(path, mmap=True)</c> does: nothing is copied at load, pages are read when the
    /// tensors are touched, and the file is never written. With <paramref name="verifyCrc"/> (the
    /// default) every record's CRC-32 is checked at load, which reads every page once; without it
    /// the load reads only the pickle and the zip directory, as torch's mmap load does. Deflated
    /// records (TorchSharp.PyBridge writes them) are read into memory as usual.
    /// </summary>
    public static CheckpointValue LoadMapped(string path, bool verifyCrc = true, CheckpointLimits? limits = null)
    {
        using var backend = new MappedTensors(path, new FileInfo(path).Length, verifyCrc);
        return new(LoadObject(path, backend, limits), path);
    }

    /// <summary>Reads a torch.save file with tensors made by <paramref name="backend"/>
    /// (<see cref="RawTensors.Instance"/> needs no libtorch).</summary>
    public static CheckpointValue Load(string path, TensorBackend backend, CheckpointLimits? limits = null) => new(LoadObject(path, backend, limits), path);

    /// <summary>The reader itself: the top-level value as built (<see cref="CheckpointValue.Value"/>).</summary>
    internal static object? LoadObject(string path, TensorBackend backend, CheckpointLimits? limits)
    {
        limits ??= CheckpointLimits.Default;
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, null, "this reader needs a little-endian machine");
        if (LegacyCheckpoint.TryLoad(path, backend, limits, out var legacy))
            return legacy;
        using var zip = ZipReader.Open(path, limits);
        CheckRecordNameCase(zip);
        var pickles = zip.Entries.Where(IsDataPickle).ToList();
        if (pickles.Count == 0)
            throw new CheckpointFormatException(path, null, Missing(zip));
        var pickleEntry = pickles[0];
        var prefix = pickleEntry.Name[..^"data.pkl".Length];
        if (IsTorchScript(zip))
            throw new CheckpointFormatException(path, pickleEntry.Name, Missing(zip));

        if (zip.Find(prefix + "byteorder") is { } byteorder)
        {
            if (byteorder.Size > 16)
                throw new CheckpointFormatException(path, byteorder.Name, $"entry '{byteorder.Name}' has {byteorder.Size:N0} bytes; it holds 'little' or 'big'");
            var order = Encoding.ASCII.GetString(zip.ReadAll(byteorder, 16, nameof(CheckpointLimits.MaxPickleBytes)));
            if (order != "little")
                throw new CheckpointFormatException(path, byteorder.Name, $"entry '{byteorder.Name}' says the storages are '{order}'-endian; only little-endian is read");
        }

        // torch.load reads '.data/version' when there is one, else 'version' (and refuses a file with
        // neither); both are checked here when present, so that neither can say what torch refuses.
        foreach (var name in new[] { prefix + ".data/version", prefix + "version" })
        {
            if (zip.Find(name) is { } version)
                CheckVersion(zip, version);
        }

        var pickle = zip.ReadAll(pickleEntry, limits.MaxPickleBytes, nameof(CheckpointLimits.MaxPickleBytes));
        long tensorBytes = 0;
        var pending = new List<Pending>();
        var reader = new PickleReader(pickle, path, pickleEntry.Name, backend, limits,
            (key, dtype, numel, location) => LoadStorage(zip, backend, limits, prefix, key, dtype, numel, location, ref tensorBytes, pending),
            () =>
            {
                Fill(zip, pending, backend.VerifyMappedCrc);
                zip.VerifyUnread();
            },
            storage => FillNow(zip, pending, storage, backend.VerifyMappedCrc));
        return reader.Load();
    }

    /// <summary>The file format versions torch.save writes into <c>version</c>: 3 since torch 1.6 (1 and
    /// 2 by older writers). torch.load also reads 4 to 10, which only TorchScript archives use.</summary>
    private static readonly int[] KnownVersions = { 1, 2, 3 };

    /// <summary>The names, below the archive's folder, of the records torch.load looks up.</summary>
    private static readonly string[] RecordNames =
        { "data.pkl", "byteorder", "version", ".data/version", ".format_version", ".storage_alignment", ".data/serialization_id" };

    /// <summary>
    /// torch.load finds its records whatever the case of their names (miniz compares them folded), so
    /// an entry 'BYTEORDER' holding 'big' is read by torch and would be missed here: an entry whose
    /// name is one of torch's record names but for case is refused. (Two entries whose names differ
    /// only in case were refused when the zip was opened.)
    /// </summary>
    private static void CheckRecordNameCase(ZipReader zip)
    {
        foreach (var entry in zip.Entries)
        {
            int slash = entry.Name.IndexOf('/');
            if (slash <= 0)
                continue;
            var record = entry.Name[(slash + 1)..];
            var folded = ZipReader.FoldCase(record);
            if (folded != record && (RecordNames.Contains(folded) || folded.StartsWith("data/", StringComparison.Ordinal)))
                throw new CheckpointFormatException(zip.Path, entry.Name,
                    $"holds the entry '{entry.Name}', which differs only in case from the record '{entry.Name[..(slash + 1)]}{folded}'; torch.load finds records " +
                    "whatever their case and reads it as that record, this reader would not, so the file is refused");
        }
    }

    /// <summary>The version record holds a decimal number torch.save wrote: one this reader knows.</summary>
    private static void CheckVersion(ZipReader zip, ZipReader.Entry entry)
    {
        if (entry.Size > 16)
            throw new CheckpointFormatException(zip.Path, entry.Name, $"entry '{entry.Name}' has {entry.Size:N0} bytes; it holds a file format version, a small number");
        var text = Encoding.ASCII.GetString(zip.ReadAll(entry, 16, nameof(CheckpointLimits.MaxPickleBytes)));
        var trimmed = text.Trim(' ', '\t', '\n', '\r');
        if (trimmed.Length == 0 || trimmed.Length > 3 || !trimmed.All(char.IsAsciiDigit) || !KnownVersions.Contains(int.Parse(trimmed, System.Globalization.CultureInfo.InvariantCulture)))
            throw new CheckpointFormatException(zip.Path, entry.Name,
                $"entry '{entry.Name}' gives the file format version '{Printable(text.TrimEnd('\n', '\r'))}'; this reader knows versions {string.Join(", ", KnownVersions)} " +
                "(torch.save writes 3; torch.load refuses versions below 1 and above 10), so the file is refused");
    }

    private static string Printable(string text) =>
        string.Concat(text.Select(c => c is >= ' ' and < '\x7f' ? c.ToString() : $"\\x{(int)c:x2}"));

    /// <summary>A record whose bytes are read after the pickle (allocated or mapped up front).</summary>
    internal sealed class Pending(ZipReader.Entry entry, object storage, nint address, bool mapped)
    {
        public ZipReader.Entry Entry { get; } = entry;
        public object Storage { get; } = storage;
        public nint Address { get; } = address;
        public bool Mapped { get; } = mapped;
        public bool Done { get; set; }
    }

    /// <summary>
    /// Writes <paramref name="value"/> so that torch.load reads it back (torch 1.13 and 2.x, also with
    /// weights_only=True and mmap=True), bit for bit. Each distinct tensor is written as its own
    /// storage: the same tensor twice, or two tensors over the same memory with the same dtype, shape
    /// and strides (tied weights), share one. Other views are written as contiguous copies of just
    /// their elements. Checkpoints of 4 GiB or more are written as zip64, as torch.save does.
    /// <para>The write never leaves a broken file: it goes to a temporary file beside
    /// <paramref name="path"/>, is flushed to disk and its size checked, and only then renamed over
    /// <paramref name="path"/>. A failure (a full disk, say) deletes the temporary and raises
    /// <see cref="CheckpointWriteException"/>, naming the file and the cause; a value that cannot be
    /// saved raises <see cref="CheckpointFormatException"/> before anything is written.</para>
    /// <para><paramref name="durable"/>: false skips the fsync (torch.save's own behaviour). The file
    /// is still written beside its name, size-checked and renamed, so no reader ever sees it half
    /// written; but after a power loss or a crash of the machine it may be missing or short.</para>
    /// </summary>
    public static void Save(string path, object? value, bool durable = true) => Save(path, value, TorchSharpTensors.Instance, durable);

    /// <summary>Writes <paramref name="value"/>, whose tensors are <paramref name="backend"/>'s
    /// (<see cref="Save(string, object?, bool)"/>).</summary>
    public static void Save(string path, object? value, TensorBackend backend, bool durable = true) => Save(path, value, backend, forceZip64: false, durable);

    internal static void Save(string path, object? value, TensorBackend backend, bool forceZip64, bool durable = true)
    {
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, null, "this writer needs a little-endian machine");
        var writer = new PickleWriter(path, backend);
        var pickle = writer.Write(value);
        AtomicFile.Write(path, file =>
        {
            var zip = new ZipWriter(file, path, forceZip64);
            zip.WriteEntry(Folder + "data.pkl", pickle);
            zip.WriteEntry(Folder + "byteorder", "little"u8);
            // Every record's place is fixed first; then they are written on all cores at once.
            var records = writer.Storages.Select((s, i) => (s.Tensor, Record: zip.Reserve($"{Folder}data/{i}", s.Info.ByteCount))).ToList();
            Segments.ForEach(records, r =>
            {
                var record = new RecordWriter(file, r.Record.Name, r.Record.DataOffset, r.Record.Size);
                backend.WriteContiguous(r.Tensor, record);
                zip.Complete(r.Record, record.Finish());
            });
            zip.WriteEntry(Folder + "version", "3\n"u8);
            zip.Finish();
            return zip.Position;
        }, durable);
    }

    /// <summary>The pickle is <c>data.pkl</c> directly inside the top-level folder (whatever its name).</summary>
    private static bool IsDataPickle(ZipReader.Entry entry)
    {
        int slash = entry.Name.IndexOf('/');
        return slash > 0 && entry.Name.AsSpan(slash + 1).SequenceEqual("data.pkl");
    }

    /// <summary>Reads record <c>data/&lt;key&gt;</c>, once it has been checked against the pickle's
    /// element count, the file and the limits.</summary>
    private static object LoadStorage(ZipReader zip, TensorBackend backend, CheckpointLimits limits, string prefix,
        string key, TorchDtype dtype, long numel, string location, ref long tensorBytes, List<Pending> pending)
    {
        var name = $"{prefix}data/{key}";
        var entry = zip.Find(name)
            ?? throw new CheckpointFormatException(zip.Path, name, $"record '{name}' for storage '{key}' is missing (data.pkl refers to it)");
        long declared = numel > long.MaxValue / dtype.ElementSize ? long.MaxValue : numel * dtype.ElementSize;
        if (entry.Size != declared)
            throw new CheckpointFormatException(zip.Path, name,
                $"record '{name}' has {entry.Size:N0} bytes, but data.pkl declares storage '{key}' as {numel:N0} x {dtype.Name} ({dtype.ElementSize} bytes each) = {declared:N0} bytes");
        return ReadRecord(zip, backend, limits, entry, key, dtype, numel, location, ref tensorBytes, pending);
    }

    /// <summary>Reads (or maps, or allocates for <see cref="Fill"/>) a storage record whose size has been checked
    /// against the pickle and the file, within <see cref="CheckpointLimits.MaxTensorBytes"/>: a zip entry or a legacy file's record.</summary>
    internal static object ReadRecord(ZipReader zip, TensorBackend backend, CheckpointLimits limits, ZipReader.Entry entry,
        string key, TorchDtype dtype, long numel, string location, ref long tensorBytes, List<Pending> pending)
    {
        var name = entry.Name;
        if (entry.Size > limits.MaxTensorBytes - tensorBytes)
            throw new CheckpointLimitException(zip.Path, name, nameof(CheckpointLimits.MaxTensorBytes), limits.MaxTensorBytes,
                tensorBytes + entry.Size, $"storage '{key}' and the ones before it");
        tensorBytes += entry.Size;

        var request = new StorageRequest(key, name, dtype, numel, location);
        if (entry.Method == ZipReader.Stored && backend.MapStorage(request, entry.DataOffset) is { } mapped)
        {
            pending.Add(new Pending(entry, mapped.Storage, mapped.Address, true));
            return mapped.Storage;
        }
        if (backend.AllocateStorage(request) is { } allocated)
        {
            pending.Add(new Pending(entry, allocated.Storage, allocated.Address, false));
            return allocated.Storage;
        }
        using var reader = zip.OpenEntry(entry);
        var storage = backend.ReadStorage(request, new RecordReader(reader));
        try
        {
            if (reader.Remaining != 0)
                throw new InvalidOperationException($"{backend.GetType().Name} left {reader.Remaining} bytes of '{name}' unread");
            reader.Finish();
            return storage;
        }
        catch
        {
            backend.ReleaseStorage(storage);
            throw;
        }
    }

    /// <summary>Reads the records whose memory was allocated up front (or checks the CRCs of the
    /// ones mapped in place), on all cores.</summary>
    internal static void Fill(ZipReader zip, List<Pending> pending, bool verifyMapped) =>
        Segments.ForEach(pending.Where(p => !p.Done).ToList(), record => Read(zip, record, verifyMapped));

    /// <summary>Reads one pending record now: a tensor whose values must be known while the pickle is
    /// read (conj and neg bits are resolved over them).</summary>
    internal static void FillNow(ZipReader zip, List<Pending> pending, object storage, bool verifyMapped)
    {
        if (pending.FirstOrDefault(p => ReferenceEquals(p.Storage, storage)) is { Done: false } record)
            Read(zip, record, verifyMapped);
    }

    private static unsafe void Read(ZipReader zip, Pending record, bool verifyMapped)
    {
        using var reader = zip.OpenEntry(record.Entry);
        if (record.Mapped)
            reader.TakeMapped((byte*)record.Address, verifyMapped);
        else
            reader.ReadWhole((byte*)record.Address);
        reader.Finish();
        record.Done = true;
    }

    /// <summary>torch.jit.save's archives hold the module's code (<c>code/__torch__/…</c>) and <c>constants.pkl</c> beside data.pkl.</summary>
    private static bool IsTorchScript(ZipReader zip) =>
        zip.Entries.Any(e => e.Name.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.Name.Contains("/code/", StringComparison.Ordinal));

    private static string Missing(ZipReader zip)
    {
        const int shown = 10;
        var names = string.Join(", ", zip.Entries.Take(shown).Select(e => e.Name));
        var list = zip.Entries.Count == 0 ? "(none)" : zip.Entries.Count > shown ? $"{names}, ... ({zip.Entries.Count} in all)" : names;
        if (IsTorchScript(zip))
            return $"is a TorchScript archive (torch.jit.save), not a torch.save checkpoint: load it with torch.jit.load; its entries are: {list}";
        return $"has no <folder>/data.pkl, so it is not a torch.save checkpoint; its entries are: {list}";
    }
}
