using NUnit.Framework;

namespace OmniKernels.Tests;

/// <summary>
/// Every accelerator present on this machine, created once for the whole run and disposed at the
/// end, with <see cref="BufferPool.PoisonRentals"/> on: every tensor the run allocates starts as NaN
/// (floats) or a sentinel (integers). When OMNI_REQUIRE_DEVICE names a kind (and device) that is
/// absent, every test fails here instead of quietly running on the emulator alone.
/// </summary>
[SetUpFixture]
public sealed class Backends
{
    private static readonly Lazy<IReadOnlyList<DeviceContext>> Contexts = new(Create);
    private static readonly Lazy<IReadOnlyList<DeviceContext>> GpuContexts = new(CreateGpuScheduled);
    private static ILGPU.Context? _ilgpu;

    /// <summary>The name <see cref="Devices"/> yields when CI requires a device and none is present.</summary>
    public const string MissingDevice = "missing-device";

    public static IReadOnlyList<DeviceContext> All => Contexts.Value;

    /// <summary>Backend names for test-case sources (resolved to contexts inside the test).</summary>
    public static IEnumerable<string> Names => All.Select(c => c.Kind.Name());

    /// <summary>
    /// The devices whose own schedule is CPU-shaped (PoCL, the emulator) once more, forced onto the
    /// GPU-shaped schedule: named KIND+gpu. GPU devices already run it in <see cref="All"/>.
    /// </summary>
    public static IReadOnlyList<DeviceContext> GpuScheduled => GpuContexts.Value;

    /// <summary>Names of <see cref="GpuScheduled"/>.</summary>
    public static IEnumerable<string> GpuScheduledNames => GpuScheduled.Select(Label);

    /// <summary>kind, or kind+gpu for a CPU device forced onto the GPU schedule.</summary>
    public static string Label(DeviceContext c) => c.Kind.Name() + (c.IsCpuLike && c.Schedule == KernelSchedule.Gpu ? "+gpu" : "");

    /// <summary>
    /// Real devices (not the emulator), for cases too large for it. Under OMNI_REQUIRE_DEVICE an empty
    /// list would make those tests vanish from the report, so it yields <see cref="MissingDevice"/>
    /// instead, whose <see cref="Get"/> fails.
    /// </summary>
    public static IEnumerable<string> Devices()
    {
        var names = Names.Where(n => !IsEmulator(n)).ToList();
        return names.Count == 0 && DeviceKinds.Required() is not null ? [MissingDevice] : names;
    }

    public static DeviceContext Get(string name)
    {
        if (name == MissingDevice)
            Assert.Fail($"{DeviceKinds.RequireVariable}={DeviceKinds.RequirementText()} but no real device is present: this device-only test would not have run");
        return name.EndsWith("+gpu", StringComparison.Ordinal) ? GpuScheduled.First(c => Label(c) == name) : All.First(c => c.Kind.Name() == name);
    }

    /// <summary>The emulator is thousands of times slower: it runs the small shapes only.</summary>
    public static bool IsEmulator(string name) => name == DeviceKind.Cpu.Name() || name == DeviceKind.Cpu.Name() + "+gpu";

    private static IReadOnlyList<DeviceContext> CreateGpuScheduled()
    {
        _ = All;
        var list = new List<DeviceContext>();
        foreach (var entry in DeviceCatalog.List(_ilgpu!).Where(e => !e.IsGpu).GroupBy(e => e.Kind).Select(g => g.First()))
            list.Add(DeviceContext.Create(_ilgpu!, entry, ownsContext: false, KernelSchedule.Gpu));
        return list;
    }

    private static IReadOnlyList<DeviceContext> Create()
    {
        BufferPool.PoisonRentals = true;
        _ilgpu = DeviceCatalog.CreateContext();
        var list = new List<DeviceContext>();
        var required = DeviceKinds.Required();
        var requiredName = DeviceKinds.RequiredName();
        // One accelerator per kind: the preferred device of each (the catalog is ordered), or for the
        // required kind the first device whose name the requirement names, so that CI tests PoCL even
        // where an OpenCL GPU is listed first.
        foreach (var group in DeviceCatalog.List(_ilgpu).GroupBy(e => e.Kind))
        {
            var entry = group.Key == required && requiredName is not null
                ? group.FirstOrDefault(e => e.Matches(requiredName))
                : group.First();
            if (entry is not null) list.Add(DeviceContext.Create(_ilgpu, entry, ownsContext: false));
        }
        return list;
    }

    [OneTimeSetUp]
    public void RequireDevice()
    {
        var name = DeviceKinds.RequiredName();
        if (DeviceKinds.Required() is { } kind && !All.Any(c => c.Kind == kind && (name is null || c.Entry.Matches(name))))
            Assert.Fail($"{DeviceKinds.RequireVariable}={DeviceKinds.RequirementText()} but no such device is present; found: {string.Join(", ", DeviceCatalog.List(_ilgpu!))}");
        TestContext.Progress.WriteLine("backends: " + string.Join("; ", All.Select(c => $"{c.Entry} (self-test: {c.SelfTest.Detail})"))
            + "; outputs poisoned: " + BufferPool.PoisonRentals);
    }

    [OneTimeTearDown]
    public void DisposeAll()
    {
        if (!Contexts.IsValueCreated) return;
        if (GpuContexts.IsValueCreated)
            foreach (var c in GpuScheduled) c.Dispose();
        foreach (var c in All) c.Dispose();
        _ilgpu?.Dispose();
    }
}
