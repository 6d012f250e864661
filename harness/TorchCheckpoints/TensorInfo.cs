namespace TorchCheckpoints;

/// <summary>What the writer needs of a tensor.</summary>
/// <param name="Dtype">Its dtype, or null when torch.save has no storage class for it.</param>
/// <param name="DtypeName">The dtype's name, for the message when <paramref name="Dtype"/> is null.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Identity">Equal for tensors over the same memory with the same layout; null: never shared.</param>
internal sealed record TensorInfo(TorchDtype? Dtype, string DtypeName, long[] Shape, object? Identity)
{
    /// <summary>Bytes of the contiguous elements.</summary>
    public long ByteCount => Shape.Aggregate(1L, (a, b) => a * b) * (Dtype?.ElementSize ?? 0);
}
