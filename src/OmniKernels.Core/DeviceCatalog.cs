using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace OmniKernels;

/// <summary>One accelerator ILGPU can create on this machine.</summary>
/// <param name="Kind">Cuda, OpenCL or Cpu.</param>
/// <param name="Name">The device's own name.</param>
/// <param name="IsGpu">True for CUDA and OpenCL GPU devices.</param>
/// <param name="IsPocl">True for PoCL's CPU device (enabled through <c>PoclSupport</c>).</param>
/// <param name="Device">ILGPU's device handle.</param>
public sealed record DeviceEntry(DeviceKind Kind, string Name, bool IsGpu, bool IsPocl, Device Device)
{
    /// <summary>Short label: kind and name.</summary>
    public override string ToString() => $"{Kind.Name()}: {Name}";

    /// <summary>
    /// True when <paramref name="name"/> names this device: a case-insensitive part of its name, or
    /// <c>pocl</c> for PoCL's CPU device (whose name is the CPU's, its platform PoCL's).
    /// </summary>
    public bool Matches(string name) =>
        Name.Contains(name, StringComparison.OrdinalIgnoreCase) || (IsPocl && name.Equals("pocl", StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// The one place that picks a device. <c>auto</c> = CUDA &gt; OpenCL GPU &gt; OpenCL CPU (PoCL) &gt; ILGPU CPU.
/// </summary>
public static class DeviceCatalog
{
    /// <summary>
    /// Creates the ILGPU context every accelerator of this runtime lives in: all backends,
    /// optimization level O2 (PoCL's OpenCL 1.2 compiler rejects the <c>__generic</c> pointers O1 emits),
    /// and ILGPU.Algorithms enabled, which maps MathF's functions (exp, tanh, ...) to PTX on a machine
    /// without libdevice (without it every kernel calling MathF.Exp fails to compile for CUDA).
    /// The emulator gets 32-wide warps and 256-thread groups, so GPU-shaped schedules run on it as on a GPU.
    /// </summary>
    public static Context CreateContext() => Context.Create(builder => builder
        .Cuda()
        .OpenCL(d => d.Capabilities.GenericAddressSpace || PoclSupport.IsPoclCpu(d))
        .CPU(EmulatorDevice)
        .Optimize(OptimizationLevel.O2)
        .EnableAlgorithms());

    /// <summary>The emulator's shape: warps of 32, 8 warps per group (256 threads), one multiprocessor.</summary>
    public static CPUDevice EmulatorDevice => new(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);

    /// <summary>Every usable device, most preferred first.</summary>
    public static IReadOnlyList<DeviceEntry> List(Context context)
    {
        var entries = new List<DeviceEntry>();
        foreach (var d in context.GetCudaDevices())
            entries.Add(new(DeviceKind.Cuda, d.Name, true, false, d));
        foreach (var d in context.GetCLDevices())
            if (d.DeviceType == CLDeviceType.CL_DEVICE_TYPE_GPU)
                entries.Add(new(DeviceKind.OpenCL, d.Name, true, false, d));
        foreach (var d in context.GetCLDevices())
            if (d.DeviceType != CLDeviceType.CL_DEVICE_TYPE_GPU)
                entries.Add(new(DeviceKind.OpenCL, d.Name, false, PoclSupport.IsPoclCpu(d), d));
        foreach (var d in context.GetCPUDevices())
            entries.Add(new(DeviceKind.Cpu, "ILGPU CPU accelerator (emulator)", false, false, d));
        return entries;
    }

    /// <summary>
    /// The device a kind resolves to, or an exception naming what is missing. <c>reference</c> has no device.
    /// </summary>
    public static DeviceEntry Pick(IReadOnlyList<DeviceEntry> devices, DeviceKind kind)
    {
        if (kind == DeviceKind.Reference)
            throw new ArgumentException("the reference device runs on the host and has no accelerator");
        var pick = kind == DeviceKind.Auto ? devices.FirstOrDefault() : devices.FirstOrDefault(d => d.Kind == kind);
        return pick ?? throw new DeviceUnavailableException(kind switch
        {
            DeviceKind.Cuda => "no CUDA device found (needs an NVIDIA GPU and driver)",
            DeviceKind.OpenCL => "no OpenCL device found; on Debian: apt-get install pocl-opencl-icd ocl-icd-opencl-dev",
            _ => $"no {kind.Name()} device found",
        });
    }

    /// <summary>One-line warning printed when <c>auto</c> lands on the emulator.</summary>
    public const string EmulatorWarning =
        "warning: running on ILGPU's CPU emulator (thousands of times slower than PoCL); install an OpenCL device: apt-get install pocl-opencl-icd ocl-icd-opencl-dev";
}

/// <summary>The requested kind of device is not present.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);
