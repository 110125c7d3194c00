namespace OmniKernels.Kernels;

/// <summary>
/// A view seen as rows × cols with contiguous rows and a row pitch: every tensor whose leading
/// dimensions collapse (dense, or row-padded as <see cref="Tensor.Allocate"/> makes them).
/// </summary>
internal readonly record struct Layout2D(long Rows, long Cols, long Pitch)
{
    public static Layout2D Of(in TensorView v, string name)
    {
        if (!v.RowsContiguous)
            throw new ArgumentException($"{name} {v}: rows must be contiguous (last stride 1)");
        long cols = v.Shape[-1];
        long pitch = v.Shape.Rank > 1 ? v.Strides[-2] : cols;
        for (int i = v.Shape.Rank - 3; i >= 0; i--)
            if (v.Strides[i] != v.Strides[i + 1] * v.Shape[i + 1])
                throw new ArgumentException($"{name} {v}: leading dimensions must collapse into rows");
        return new Layout2D(v.Shape.LeadingProduct, cols, pitch);
    }

    public static void CheckF32(in TensorView v, string name)
    {
        if (v.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {v.DType}");
    }
}
