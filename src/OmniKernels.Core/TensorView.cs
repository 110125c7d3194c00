using ILGPU;

namespace OmniKernels;

/// <summary>
/// A non-owning, strided window on device memory: dtype, shape, strides (in elements) and the
/// element offset of its first element. Views never own or free memory; a view is valid only
/// while the <see cref="Tensor"/> (or buffer) it was taken from is alive. Copying a view is free
/// and allocates nothing, so launchers take views and an execution plan can replay launches.
/// </summary>
public readonly struct TensorView
{
    /// <summary>Wraps raw device bytes as a tensor view.</summary>
    public TensorView(ArrayView<byte> storage, DType dtype, Shape shape, Shape strides, long offset = 0)
    {
        if (shape.Rank != strides.Rank)
            throw new ArgumentException($"shape {shape} and strides {strides} differ in rank");
        long last = offset;
        for (int i = 0; i < shape.Rank; i++)
        {
            if (shape[i] <= 0) throw new ArgumentException($"shape {shape} has a non-positive extent");
            if (strides[i] < 0) throw new ArgumentException($"strides {strides} has a negative stride");
            last += (shape[i] - 1) * strides[i];
        }
        if (offset < 0 || (last + 1) * dtype.SizeOf() > storage.Length)
            throw new ArgumentException(
                $"a {dtype} view of shape {shape}, strides {strides}, offset {offset} needs {(last + 1) * dtype.SizeOf()} bytes; storage has {storage.Length}");
        Storage = storage;
        DType = dtype;
        Shape = shape;
        Strides = strides;
        Offset = offset;
    }

    /// <summary>The whole device allocation the view points into.</summary>
    public ArrayView<byte> Storage { get; }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Extents, row-major.</summary>
    public Shape Shape { get; }

    /// <summary>Strides in elements, one per dimension.</summary>
    public Shape Strides { get; }

    /// <summary>Index, in elements, of the view's first element within <see cref="Storage"/>.</summary>
    public long Offset { get; }

    /// <summary>Elements from the view's first element to the end of the storage, typed.</summary>
    public ArrayView<T> Elements<T>() where T : unmanaged
    {
        if (DTypeInfo.Of<T>() != DType)
            throw new InvalidOperationException($"a {DType} tensor read as {typeof(T).Name}");
        return Storage.Cast<T>().SubView(Offset);
    }

    /// <summary>True when the last dimension has stride 1 (rows are contiguous, the row pitch may be padded).</summary>
    public bool RowsContiguous => Strides[-1] == 1;

    /// <summary>Element capacity from <see cref="Offset"/> to the end of the storage (padding included).</summary>
    public long Capacity => Storage.Length / DType.SizeOf() - Offset;

    /// <summary>Prints dtype, shape and strides.</summary>
    public override string ToString() => $"{DType}{Shape} strides {Strides}";
}
