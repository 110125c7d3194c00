using ILGPU;

namespace OmniKernels.Kernels;

/// <summary>
/// Work-group reductions for the GPU-shaped schedules, through shared memory and barriers only:
/// ILGPU generates warp shuffles for CUDA and Intel's OpenCL but not for PoCL, and these kernels
/// must run on PoCL (forced) and on the emulator in CI, so one portable form serves all three.
/// </summary>
internal static class GroupReduce
{
    /// <summary>Threads per work-group of the row-reduction kernels (LayerNorm, RMSNorm, softmax).</summary>
    public const int RowThreads = 256;

    /// <summary>
    /// op over every thread's <paramref name="value"/>, returned to every thread. <paramref name="scratch"/>
    /// is shared memory of <see cref="RowThreads"/> floats; it may be reused right after the call
    /// (the closing barrier orders the next writes after every read of the result).
    /// </summary>
    public static float All<TOp>(float value, ArrayView<float> scratch) where TOp : struct, IBinaryOp
    {
        int t = Group.IdxX;
        scratch[t] = value;
        Group.Barrier();
        for (int s = RowThreads / 2; s > 0; s >>= 1)
        {
            if (t < s) scratch[t] = default(TOp).Apply(scratch[t], scratch[t + s]);
            Group.Barrier();
        }
        float r = scratch[0];
        Group.Barrier();
        return r;
    }
}
