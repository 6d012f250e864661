namespace TorchCheckpoints;

/// <summary>One storage a pickle refers to: <c>('storage', torch.FloatStorage, key, location, numel)</c>.</summary>
/// <param name="Key">The record's key: its data are in <c>&lt;archive&gt;/data/&lt;key&gt;</c>.</param>
/// <param name="Entry">The zip entry holding the data.</param>
/// <param name="Dtype">The storage's dtype.</param>
/// <param name="ElementCount">Elements, as the pickle declares and the record holds.</param>
/// <param name="Location">Where it was saved from (<c>cpu</c>, <c>cuda:0</c>); every backend here loads onto the CPU.</param>
internal sealed record StorageRequest(string Key, string Entry, TorchDtype Dtype, long ElementCount, string Location)
{
    /// <summary>The storage's size in bytes.</summary>
    public long ByteCount => ElementCount * Dtype.ElementSize;
}
