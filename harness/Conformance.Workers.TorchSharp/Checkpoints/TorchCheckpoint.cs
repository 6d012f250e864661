using System.Text;
using static TorchSharp.torch;

namespace Conformance.Workers.TorchSharp.Checkpoints;

/// <summary>
/// Reads and writes PyTorch's torch.save format (torch >= 1.6: a zip holding data.pkl, a pickle,
/// and one record per tensor storage), so that a TorchSharp worker exchanges checkpoints with real
/// PyTorch without Python. Values follow the model described in PyValues.cs.
/// </summary>
public static class TorchCheckpoint
{
    /// <summary>The folder torch >= 2 puts every record in; torch.load accepts any one folder name.</summary>
    private const string Folder = "archive/";

    /// <summary>
    /// Reads a torch.save file. Tensors come back on the CPU as views of their storages, so tensors that
    /// shared a storage when saved (slices, tied weights) share memory again. The pickle is run by a
    /// restricted reader that never executes code; a global outside its allowlist raises
    /// <see cref="ForbiddenGlobalException"/>. Any other problem raises <see cref="CheckpointFormatException"/>.
    /// </summary>
    public static object? Load(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, "this reader needs a little-endian machine");
        using var zip = ZipReader.Open(path);
        var pickleEntry = zip.Entries.FirstOrDefault(IsDataPickle)
            ?? throw new CheckpointFormatException(path,
                $"has no <folder>/data.pkl, so it is not a torch.save checkpoint; its entries are: {ListEntries(zip)}");
        var prefix = pickleEntry.Name[..^"data.pkl".Length];

        if (zip.Find(prefix + "byteorder") is { } byteorder)
        {
            var order = Encoding.ASCII.GetString(zip.ReadAll(byteorder));
            if (order != "little")
                throw new CheckpointFormatException(path, $"entry '{byteorder.Name}' says the storages are '{order}'-endian; only little-endian is read");
        }

        var pickle = zip.ReadAll(pickleEntry);
        var reader = new PickleReader(pickle, path, pickleEntry.Name, (key, dtype) => LoadStorage(zip, prefix, key, dtype));
        return reader.Load();
    }

    /// <summary>
    /// Writes <paramref name="value"/> so that torch.load reads it back (torch 1.13 and 2.x, also with
    /// weights_only=True and mmap=True), bit for bit; like torch.save's own files, a value holding a
    /// float or bytes is beyond torch 1.13's weights_only reader. Each distinct tensor is written as its own storage:
    /// the same tensor twice, or two tensors over the same memory with the same dtype, shape and strides
    /// (tied weights), share one. Other views are not merged: a non-contiguous tensor, or a slice of a
    /// bigger one, is written as a contiguous copy of just its elements, on the CPU. The file is
    /// written beside <paramref name="path"/> and moved over it when complete.
    /// </summary>
    public static void Save(string path, object? value)
    {
        if (!BitConverter.IsLittleEndian)
            throw new CheckpointFormatException(path, "this writer needs a little-endian machine");
        var writer = new PickleWriter(path);
        var pickle = writer.Write(value);
        long total = writer.Storages.Sum(TensorMemory.ByteCount);
        if (total >= uint.MaxValue)
            throw new CheckpointFormatException(path, $"the tensors hold {total} bytes; this writer does not write zip64, so stops below 4 GiB");

        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var file = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                var zip = new ZipWriter(file, path);
                zip.WriteEntry(Folder + "data.pkl", pickle);
                zip.WriteEntry(Folder + "byteorder", "little"u8);
                for (int i = 0; i < writer.Storages.Count; i++)
                    WriteStorage(zip, $"{Folder}data/{i}", writer.Storages[i]);
                zip.WriteEntry(Folder + "version", "3\n"u8);
                zip.Finish();
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>The pickle is the one <c>data.pkl</c> directly inside a top-level folder (whatever its name).</summary>
    private static bool IsDataPickle(ZipReader.Entry entry)
    {
        int slash = entry.Name.IndexOf('/');
        return slash > 0 && entry.Name.AsSpan(slash + 1).SequenceEqual("data.pkl");
    }

    /// <summary>Reads record <c>data/&lt;key&gt;</c> straight into a new 1-D CPU tensor of the storage's dtype.</summary>
    private static unsafe Tensor LoadStorage(ZipReader zip, string prefix, string key, TorchDtypes.Info dtype)
    {
        var name = $"{prefix}data/{key}";
        var entry = zip.Find(name)
            ?? throw new CheckpointFormatException(zip.Path, $"record '{name}' for storage '{key}' is missing (data.pkl refers to it)");
        if (entry.Size % dtype.ElementSize != 0)
            throw new CheckpointFormatException(zip.Path,
                $"record '{name}' has {entry.Size} bytes, not a whole number of {dtype.TorchName} elements ({dtype.ElementSize} bytes each)");

        using var reader = zip.OpenEntry(entry); // validated against the file before memory is allocated for it
        var storage = empty(new[] { entry.Size / dtype.ElementSize }, dtype.Type);
        try
        {
            byte* start = TensorMemory.FirstElement(storage);
            for (long offset = 0; offset < entry.Size; offset += TensorMemory.ChunkBytes)
                reader.ReadExactly(TensorMemory.Slice(start, offset, (int)Math.Min(TensorMemory.ChunkBytes, entry.Size - offset)));
            reader.Finish();
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>Streams a tensor's elements, made contiguous and CPU-resident first if need be.</summary>
    private static unsafe void WriteStorage(ZipWriter zip, string name, Tensor tensor)
    {
        using var cpu = tensor.cpu();
        using var contiguous = cpu.contiguous();
        long size = TensorMemory.ByteCount(contiguous);
        zip.BeginEntry(name, size);
        byte* start = TensorMemory.FirstElement(contiguous);
        for (long offset = 0; offset < size; offset += TensorMemory.ChunkBytes)
            zip.Write(TensorMemory.Slice(start, offset, (int)Math.Min(TensorMemory.ChunkBytes, size - offset)));
        zip.EndEntry();
    }

    private static string ListEntries(ZipReader zip)
    {
        const int shown = 10;
        var names = string.Join(", ", zip.Entries.Take(shown).Select(e => e.Name));
        return zip.Entries.Count == 0 ? "(none)" : zip.Entries.Count > shown ? $"{names}, ... ({zip.Entries.Count} in all)" : names;
    }
}
