namespace TorchCheckpoints;

/// <summary>
/// The file asks for more than a <see cref="CheckpointLimits"/> setting allows (pickle depth, memo
/// size, zip entries, tensor bytes). Raised before the memory is allocated. Raise the setting if the
/// file is trusted and really that large.
/// </summary>
public sealed class CheckpointLimitException : CheckpointFormatException
{
    internal CheckpointLimitException(string path, string? entry, string limit, long allowed, long asked, string what)
        : base(path, entry,
            $"{what} needs {asked:N0}, over the limit {limit} = {allowed:N0} (CheckpointLimits.{limit}); " +
            "nothing that large was allocated. Raise the limit if the file is trusted")
    {
        Limit = limit;
        Allowed = allowed;
        Asked = asked;
    }

    /// <summary>The name of the <see cref="CheckpointLimits"/> property that was exceeded.</summary>
    public string Limit { get; }

    /// <summary>The limit's value.</summary>
    public long Allowed { get; }

    /// <summary>What the file asked for.</summary>
    public long Asked { get; }
}
