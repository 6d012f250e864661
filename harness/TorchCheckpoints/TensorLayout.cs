namespace TorchCheckpoints;

/// <summary>A tensor's view of a storage, in elements.</summary>
internal sealed record TensorLayout(TorchDtype Dtype, long StorageOffset, long[] Shape, long[] Stride, bool RequiresGrad)
{
    /// <summary>Elements in the tensor.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Row-major strides, with torch's convention that a zero-sized dimension counts as 1.</summary>
    public static long[] ContiguousStride(long[] shape)
    {
        var stride = new long[shape.Length];
        long step = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            stride[i] = step;
            step *= Math.Max(shape[i], 1);
        }
        return stride;
    }
}
