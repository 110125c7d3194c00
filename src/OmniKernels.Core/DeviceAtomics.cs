using ILGPU;
using ILGPU.Frontend;
using ILGPU.Runtime;

namespace OmniKernels;

/// <summary>Atomic integer add as a struct operation, chosen once per accelerator.</summary>
public interface IAtomicAdd
{
    /// <summary>Adds <paramref name="value"/> to <paramref name="target"/> atomically.</summary>
    void Add(ref int target, int value);
}

/// <summary>ILGPU's own atomics: CUDA and the CPU emulator.</summary>
public readonly struct IlgpuAtomicAdd : IAtomicAdd
{
    /// <inheritdoc/>
    public void Add(ref int target, int value) => Atomic.Add(ref target, value);
}

/// <summary>
/// OpenCL 1.2's <c>atomic_add</c>. ILGPU emits C11 <c>atomic_fetch_add</c> through an
/// <c>(atomic_int*)</c> cast, which on a device without the generic address space (PoCL 3.1:
/// OpenCL C 1.2) turns a global pointer private and fails to build. The 1.2 built-in takes the
/// <c>__global</c> or <c>__local</c> pointer as it is.
/// </summary>
public readonly struct OpenCLAtomicAdd : IAtomicAdd
{
    /// <inheritdoc/>
    public void Add(ref int target, int value) => AtomicAdd(ref target, value);

    [External("atomic_add")]
    private static int AtomicAdd(ref int target, int value) => Interlocked.Add(ref target, value) - value;
}

/// <summary>Which atomic operation an accelerator takes.</summary>
public static class DeviceAtomics
{
    /// <summary>True where kernels must use <see cref="OpenCLAtomicAdd"/>.</summary>
    public static bool UsesOpenCL(Accelerator accelerator) => accelerator.AcceleratorType == AcceleratorType.OpenCL;
}
