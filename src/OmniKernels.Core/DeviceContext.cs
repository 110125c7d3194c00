using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;

namespace OmniKernels;

/// <summary>
/// One ILGPU context, accelerator and stream, with the kernel cache and the buffer pool.
/// Create once per device and keep it: creating one compiles the self-test (hundreds of ms).
/// Ownership: the creator disposes it, after every <see cref="Tensor"/> allocated on it.
/// Kernel loading and pool use are thread-safe; launches on <see cref="Stream"/> are ordered,
/// so concurrent callers must serialize a request's launches (the session layer does).
/// </summary>
public sealed class DeviceContext : IDisposable
{
    private readonly ConcurrentDictionary<object, object> _kernels = new();
    private readonly Lock _loadLock = new();

    private DeviceContext(Context context, Accelerator accelerator, DeviceEntry entry, SelfTestResult selfTest, KernelSchedule schedule)
    {
        Schedule = schedule;
        IlgpuContext = context;
        Accelerator = accelerator;
        Entry = entry;
        SelfTest = selfTest;
        Pool = new BufferPool(accelerator);
    }

    /// <summary>
    /// Creates the accelerator for <paramref name="kind"/> (<see cref="DeviceKind.Auto"/> follows the
    /// catalog's order) and runs the self-test on it; a failed self-test throws.
    /// When <c>OMNI_REQUIRE_DEVICE</c> names a kind (and a device name) and auto picks another, this throws instead of falling back.
    /// <paramref name="schedule"/> forces the kernels' schedule (see <see cref="KernelSchedules.Resolve"/>).
    /// </summary>
    public static DeviceContext Create(DeviceKind kind = DeviceKind.Auto, KernelSchedule? schedule = null)
    {
        var context = DeviceCatalog.CreateContext();
        try
        {
            var entry = DeviceCatalog.Pick(DeviceCatalog.List(context), kind);
            var required = DeviceKinds.Required();
            var requiredName = DeviceKinds.RequiredName();
            if (required is { } r && r != DeviceKind.Auto && kind == DeviceKind.Auto
                && (entry.Kind != r || (requiredName is not null && !entry.Matches(requiredName))))
                throw new DeviceUnavailableException(
                    $"{DeviceKinds.RequireVariable}={DeviceKinds.RequirementText()} but auto picked {entry}; install that device or unset the variable");
            return Create(context, entry, ownsContext: true, schedule);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the accelerator of a listed device; disposes <paramref name="context"/> with itself when
    /// <paramref name="ownsContext"/>. <paramref name="schedule"/> forces the kernels' schedule.
    /// </summary>
    public static DeviceContext Create(Context context, DeviceEntry entry, bool ownsContext, KernelSchedule? schedule = null)
    {
        if (entry.Device is CLDevice cl) PoclSupport.Enable(cl);
        var accelerator = entry.Device.CreateAccelerator(context);
        try
        {
            var result = OmniKernels.SelfTest.Run(accelerator);
            if (!result.Passed)
                throw new InvalidOperationException($"self-test failed on {entry}: {result.Detail}");
            return new DeviceContext(context, accelerator, entry, result, KernelSchedules.Resolve(schedule, !entry.IsGpu)) { _ownsContext = ownsContext };
        }
        catch
        {
            accelerator.Dispose();
            throw;
        }
    }

    private bool _ownsContext;

    /// <summary>The ILGPU context.</summary>
    public Context IlgpuContext { get; }

    /// <summary>The accelerator kernels run on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The stream launches go to (the accelerator's default stream).</summary>
    public AcceleratorStream Stream => Accelerator.DefaultStream;

    /// <summary>Which device this is.</summary>
    public DeviceEntry Entry { get; }

    /// <summary>Kind of the device.</summary>
    public DeviceKind Kind => Entry.Kind;

    /// <summary>True for devices where a work-item should own a register tile (CPU-shaped schedules).</summary>
    public bool IsCpuLike => !Entry.IsGpu;

    /// <summary>
    /// The schedule every launcher on this context uses, fixed at creation: the device's own shape
    /// unless <c>OMNI_SCHEDULE</c> or the creator forced one (tests run GPU-shaped kernels on PoCL so).
    /// </summary>
    public KernelSchedule Schedule { get; }

    /// <summary>Result of the self-test run at creation.</summary>
    public SelfTestResult SelfTest { get; }

    /// <summary>Device memory cache; tensors rent from it.</summary>
    public BufferPool Pool { get; }

    /// <summary>
    /// Returns the kernel stored under <paramref name="key"/>, loading (compiling) it on first use only.
    /// Pass a static key and a static lambda so that the lookup allocates nothing.
    /// </summary>
    public TDelegate Kernel<TDelegate>(object key, Func<Accelerator, TDelegate> load) where TDelegate : class
    {
        if (_kernels.TryGetValue(key, out var k)) return (TDelegate)k;
        // One compile at a time keeps ILGPU's type numbering, and so PoCL's source cache keys, stable.
        lock (_loadLock)
        {
            if (_kernels.TryGetValue(key, out k)) return (TDelegate)k;
            var loaded = load(Accelerator);
            _kernels[key] = loaded;
            return loaded;
        }
    }

    /// <summary>Waits for every launch on the stream to finish.</summary>
    public void Synchronize() => Stream.Synchronize();

    /// <summary>Disposes the pool, the accelerator and (if owned) the ILGPU context, in that order.</summary>
    public void Dispose()
    {
        Pool.Dispose();
        Accelerator.Dispose();
        if (_ownsContext) IlgpuContext.Dispose();
    }

    /// <summary>Device label.</summary>
    public override string ToString() => Entry.ToString();

    /// <summary>A snapshot of the keys of the kernels loaded so far (tests check each is a listed entry point).</summary>
    public IReadOnlyList<object> LoadedKernelKeys() => [.. _kernels.Keys];
}
