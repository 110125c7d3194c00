using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using NUnit.Framework;
using OmniKernels.Kernels;

namespace OmniKernels.Tests;

/// <summary>
/// The CUDA path checked without a GPU: ILGPU 1.5.3 generates PTX with no driver, so every kernel
/// variant a launcher can load (the registry: CPU- and GPU-shaped, OpenCL-only ones excepted) is
/// compiled for sm_80, the GPU-shaped ones for sm_90 too, and the GPU-shaped PTX is checked for what
/// its design says must be there (shared-memory loads, barriers, dp4a) and must not (local-memory spills).
/// </summary>
[TestFixture]
public sealed class PtxOfflineTests
{
    private Context? _context;
    private readonly Dictionary<CudaArchitecture, PTXBackend> _backends = [];

    /// <summary>What the PTX of each GPU-shaped kernel method must contain.</summary>
    private static readonly Dictionary<string, string[]> GpuExpectations = new()
    {
        ["TiledKernel"] = ["ld.shared.f32", "st.shared.f32", "bar.sync"],
        ["Dp4aKernel"] = ["ld.shared.b32", "bar.sync", "dp4a.s32.s32"],
        ["FlashKernel"] = ["ld.shared.f32", "bar.sync", "ex2.approx"],
        ["GroupKernel"] = ["ld.shared.f32", "bar.sync"],
        ["GroupSigmoidKernel"] = ["ld.shared.f32", "st.shared.f32", "bar.sync", "ex2.approx"],
        ["QuantizeGroupKernel"] = ["ld.shared.f32", "bar.sync"],
        ["L2GroupKernel"] = ["ld.shared.f32", "bar.sync"],
        ["SelectGroupKernel"] = ["ld.shared.f32", "st.shared.f32", "bar.sync"],
        ["GroupSoftmaxKernel"] = ["ld.shared.f32", "st.shared.f32", "bar.sync", "ex2.approx"],
    };

    [OneTimeSetUp]
    public void CreateBackends()
    {
        _context = DeviceCatalog.CreateContext();
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
            _backends[arch] = new PTXBackend(_context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
    }

    [OneTimeTearDown]
    public void DisposeBackends()
    {
        foreach (var b in _backends.Values) b.Dispose();
        _context?.Dispose();
    }

    private static IEnumerable<KernelEntry> CudaLoadable => KernelRegistry.All.Where(e => !e.OpenCLOnly);

    public static IEnumerable<TestCaseData> Sm80Cases() =>
        CudaLoadable.Select(e => new TestCaseData(e.Name).SetName($"ptx_sm80/{e.Name}"));

    public static IEnumerable<TestCaseData> GpuShapedCases() =>
        from e in CudaLoadable
        where e.Schedule == KernelSchedule.Gpu
        from arch in new[] { "sm80", "sm90" }
        select new TestCaseData(e.Name, arch).SetName($"ptx_{arch}_gpu/{e.Name}");

    private static KernelEntry Find(string name) => KernelRegistry.All.Single(e => e.Name == name);

    private string Compile(KernelEntry e, CudaArchitecture arch)
    {
        var description = e.Grouping == KernelGrouping.Explicit
            ? EntryPointDescription.FromExplicitlyGroupedKernel(e.Method)
            : EntryPointDescription.FromImplicitlyGroupedKernel(e.Method);
        var specialization = e.GroupSize is { } n ? new KernelSpecialization(n, null) : KernelSpecialization.Empty;
        var compiled = (PTXCompiledKernel)_backends[arch].Compile(description, specialization);
        return compiled.PTXAssembly;
    }

    [TestCaseSource(nameof(Sm80Cases))]
    public void CompilesForSm80(string name)
    {
        var ptx = Compile(Find(name), CudaArchitecture.SM_80);
        Assert.That(ptx, Does.Contain(".target sm_80"));
        Assert.That(ptx, Does.Contain(".entry"));
    }

    [TestCaseSource(nameof(GpuShapedCases))]
    public void GpuShapedPtxHasItsDesign(string name, string arch)
    {
        var e = Find(name);
        var ptx = Compile(e, arch == "sm80" ? CudaArchitecture.SM_80 : CudaArchitecture.SM_90);
        // ILGPU 1.5.3 writes .target sm_80 at most, whatever the architecture asked for (docs/kernels/gpu.md).
        Assert.That(ptx, Does.Contain(".target sm_80"));
        Assert.That(GpuExpectations.ContainsKey(e.Method.Name), $"{e.Method.Name} is GPU-shaped but has no PTX expectations in this test");
        foreach (var must in GpuExpectations[e.Method.Name])
            Assert.That(ptx, Does.Contain(must), $"{name} ({arch}): '{must}' missing; shared-memory lines: "
                + string.Join(" | ", ptx.Split('\n').Where(l => l.Contains(".shared")).Take(6).Select(l => l.Trim())));
        // No local memory, except that ILGPU passes an inline-PTX output operand (dp4a's) through a
        // 4-byte local that ptxas keeps in a register; anything larger is a spill or a stack array.
        var locals = ptx.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith(".local", StringComparison.Ordinal)).ToList();
        int allowed = e.Method.Name == "Dp4aKernel" ? 4 : 0;
        Assert.That(locals.Where(l => allowed == 0 || !l.EndsWith($"[{allowed}];", StringComparison.Ordinal)), Is.Empty,
            $"{name} ({arch}): local memory (a spill or a stack array)");
        if (e.GroupSize is { } n) Assert.That(ptx, Does.Contain($".maxntid {n}, 1, 1"));
    }

    /// <summary>
    /// Every kernel method of the kernels assembly (a static method named *Kernel) is listed, so the
    /// PTX cases above cannot silently miss a family.
    /// </summary>
    [Test]
    public void EveryKernelMethodIsInTheRegistry()
    {
        var listed = KernelRegistry.All.Select(e => e.Method.IsGenericMethod ? e.Method.GetGenericMethodDefinition() : e.Method).ToHashSet();
        var methods = typeof(KernelRegistry).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.Name.EndsWith("Kernel", StringComparison.Ordinal) && m.ReturnType == typeof(void) && !m.Name.StartsWith('<'))
            .ToList();
        Assert.That(methods, Is.Not.Empty);
        Assert.That(methods.Where(m => !listed.Contains(m)).Select(m => $"{m.DeclaringType!.Name}.{m.Name}"), Is.Empty);
    }

    [Test]
    public void EveryGpuShapedMethodHasExpectations() =>
        Assert.That(KernelRegistry.All.Where(e => e.Schedule == KernelSchedule.Gpu).Select(e => e.Method.Name).Distinct()
            .Where(n => !GpuExpectations.ContainsKey(n)), Is.Empty);
}
