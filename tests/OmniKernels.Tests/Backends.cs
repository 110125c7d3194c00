using NUnit.Framework;

namespace OmniKernels.Tests;

/// <summary>
/// Every accelerator present on this machine, created once for the whole run and disposed at the
/// end. When OMNI_REQUIRE_DEVICE names a kind that is absent, every test fails here instead of
/// quietly running on the emulator alone.
/// </summary>
[SetUpFixture]
public sealed class Backends
{
    private static readonly Lazy<IReadOnlyList<DeviceContext>> Contexts = new(Create);
    private static readonly Lazy<IReadOnlyList<DeviceContext>> GpuContexts = new(CreateGpuScheduled);
    private static ILGPU.Context? _ilgpu;

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

    public static DeviceContext Get(string name) =>
        name.EndsWith("+gpu", StringComparison.Ordinal) ? GpuScheduled.First(c => Label(c) == name) : All.First(c => c.Kind.Name() == name);

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
        _ilgpu = DeviceCatalog.CreateContext();
        var list = new List<DeviceContext>();
        // One accelerator per kind: the preferred device of each (the catalog is ordered).
        foreach (var entry in DeviceCatalog.List(_ilgpu).GroupBy(e => e.Kind).Select(g => g.First()))
            list.Add(DeviceContext.Create(_ilgpu, entry, ownsContext: false));
        return list;
    }

    [OneTimeSetUp]
    public void RequireDevice()
    {
        var required = DeviceKinds.Required();
        if (required is { } kind && !All.Any(c => c.Kind == kind))
            Assert.Fail($"{DeviceKinds.RequireVariable}={kind.Name()} but no such device is present; found: {string.Join(", ", All.Select(c => c.Entry))}");
        TestContext.Progress.WriteLine("backends: " + string.Join("; ", All.Select(c => $"{c.Entry} (self-test: {c.SelfTest.Detail})")));
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
