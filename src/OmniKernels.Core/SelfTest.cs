using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels;

/// <summary>Outcome of <see cref="SelfTest"/> on one accelerator.</summary>
/// <param name="Passed">Whether every check held.</param>
/// <param name="Detail">What was checked, or what failed.</param>
/// <param name="Elapsed">Compile plus run time.</param>
public sealed record SelfTestResult(bool Passed, string Detail, TimeSpan Elapsed);

/// <summary>
/// Runs the features kernels rely on (shared memory, group barriers, atomics, a group tree
/// reduction) on a new accelerator, with exact integer answers. The PoCL enablement is trusted
/// only because this passes.
/// </summary>
public static class SelfTest
{
    // 16: the largest group ILGPU's CPU emulator accepts.
    private const int GroupSize = 16;
    private const int Groups = 7;

    private static void Kernel<TAtomic>(ArrayView<int> input, ArrayView<int> groupSums, ArrayView<int> totals)
        where TAtomic : struct, IAtomicAdd
    {
        var shared = SharedMemory.Allocate<int>(GroupSize);
        int tid = Group.IdxX;
        int g = Grid.IdxX;
        shared[tid] = input[g * GroupSize + tid];
        Group.Barrier();
        for (int stride = GroupSize / 2; stride > 0; stride >>= 1)
        {
            if (tid < stride) shared[tid] += shared[tid + stride];
            Group.Barrier();
        }
        default(TAtomic).Add(ref totals[1], 1);
        if (tid == 0)
        {
            groupSums[g] = shared[0];
            default(TAtomic).Add(ref totals[0], shared[0]);
        }
    }

    /// <summary>Compiles and runs the self-test kernel; never throws for a failed check.</summary>
    public static SelfTestResult Run(Accelerator accelerator)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var input = new int[GroupSize * Groups];
            var rng = new Random(1234);
            for (int i = 0; i < input.Length; i++) input[i] = rng.Next(-1000, 1000);
            var kernel = DeviceAtomics.UsesOpenCL(accelerator)
                ? accelerator.LoadKernel<ArrayView<int>, ArrayView<int>, ArrayView<int>>(Kernel<OpenCLAtomicAdd>)
                : accelerator.LoadKernel<ArrayView<int>, ArrayView<int>, ArrayView<int>>(Kernel<IlgpuAtomicAdd>);
            using var dIn = accelerator.Allocate1D(input);
            using var dSums = accelerator.Allocate1D<int>(Groups);
            using var dTotals = accelerator.Allocate1D<int>(2);
            dSums.MemSetToZero();
            dTotals.MemSetToZero();
            kernel(accelerator.DefaultStream, new KernelConfig(Groups, GroupSize), dIn.View, dSums.View, dTotals.View);
            accelerator.Synchronize();
            var sums = dSums.GetAsArray1D();
            var totals = dTotals.GetAsArray1D();
            long expectedTotal = 0;
            for (int g = 0; g < Groups; g++)
            {
                int expected = 0;
                for (int t = 0; t < GroupSize; t++) expected += input[g * GroupSize + t];
                expectedTotal += expected;
                if (sums[g] != expected)
                    return new(false, $"group reduction: group {g} summed to {sums[g]}, expected {expected}", sw.Elapsed);
            }
            if (totals[0] != expectedTotal)
                return new(false, $"atomic add of group sums gave {totals[0]}, expected {expectedTotal}", sw.Elapsed);
            if (totals[1] != GroupSize * Groups)
                return new(false, $"atomic counter gave {totals[1]}, expected {GroupSize * Groups}", sw.Elapsed);
            return new(true, $"shared memory, barrier, atomics, group reduction: {Groups}x{GroupSize} ok", sw.Elapsed);
        }
        catch (Exception e)
        {
            return new(false, $"{e.GetType().Name}: {(e is ILGPU.Runtime.OpenCL.CLException cl ? cl.Error.ToString() + " " : "")}{e.Message}", sw.Elapsed);
        }
    }
}
