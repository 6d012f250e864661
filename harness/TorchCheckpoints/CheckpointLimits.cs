namespace TorchCheckpoints;

/// <summary>
/// What a file may ask of the reader before it is refused with <see cref="CheckpointLimitException"/>.
/// Each bound is checked before the memory it guards is allocated. The defaults read every real
/// checkpoint (a 70-billion-parameter model in bfloat16 is 140 GB of tensors in a few thousand
/// records, with a pickle of a few MB) and stop hostile ones early.
/// </summary>
public sealed record CheckpointLimits
{
    /// <summary>The defaults.</summary>
    public static CheckpointLimits Default { get; } = new();

    /// <summary>Entries in the zip's central directory. Default 1,000,000.</summary>
    public long MaxEntries { get; init; } = 1_000_000;

    /// <summary>Bytes of <c>data.pkl</c> once inflated. Default 256 MiB.</summary>
    public long MaxPickleBytes { get; init; } = 256L << 20;

    /// <summary>Nesting of the pickle: open MARKs plus containers inside containers. Default 1,000
    /// (Python's own recursion limit; torch.save writes a depth of about 6).</summary>
    public int MaxPickleDepth { get; init; } = 1_000;

    /// <summary>Values on the pickle stack at once. Default 10,000,000.</summary>
    public long MaxStackItems { get; init; } = 10_000_000;

    /// <summary>Entries in the pickle's memo. Default 10,000,000.</summary>
    public long MaxMemoEntries { get; init; } = 10_000_000;

    /// <summary>Bytes of all tensor storages together. Default 1 TiB.</summary>
    public long MaxTensorBytes { get; init; } = 1L << 40;

    /// <summary>Dimensions of one tensor. Default 64, PyTorch's own limit.</summary>
    public int MaxRank { get; init; } = 64;
}
