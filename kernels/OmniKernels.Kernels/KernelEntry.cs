using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>How a kernel method takes its launch geometry.</summary>
public enum KernelGrouping
{
    /// <summary>The launcher passes a <see cref="KernelConfig"/> (groups × group size).</summary>
    Explicit,
    /// <summary>An <see cref="Index1D"/> of work-items; ILGPU picks the group size.</summary>
    Implicit,
}

/// <summary>Marks a struct operation that only the OpenCL backend can compile (it maps to an OpenCL C external).</summary>
public interface IOpenCLOnly;

/// <summary>
/// One kernel variant a launcher can load: a static kernel method with its generic (struct
/// operation) arguments bound. Every variant of every family is listed in <see cref="KernelRegistry"/>,
/// and launchers load only listed variants (through their family's table), so a test that walks the
/// registry (the offline PTX check) sees everything a launcher can run. Immutable; thread-safe.
/// </summary>
public sealed class KernelEntry
{
    internal KernelEntry(string family, MethodInfo method, KernelGrouping grouping, KernelSchedule? schedule, int? groupSize)
    {
        Family = family;
        Method = method;
        Grouping = grouping;
        Schedule = schedule;
        GroupSize = groupSize;
        OpenCLOnly = method.IsGenericMethod && method.GetGenericArguments().Any(IsOpenCLOnly);
        Name = $"{family}/{method.Name}" + (method.IsGenericMethod ? $"<{string.Join(", ", method.GetGenericArguments().Select(TypeName))}>" : "");
    }

    /// <summary>Kernel family (one per file under kernels/).</summary>
    public string Family { get; }

    /// <summary>The kernel method, generic arguments bound.</summary>
    public MethodInfo Method { get; }

    /// <summary>Whether it is launched with explicit groups.</summary>
    public KernelGrouping Grouping { get; }

    /// <summary>The schedule it belongs to; null when the family has one schedule for every device.</summary>
    public KernelSchedule? Schedule { get; }

    /// <summary>Threads per group the launcher always uses (GPU-shaped kernels), or null.</summary>
    public int? GroupSize { get; }

    /// <summary>True when a type argument maps to an OpenCL external: launchers load it on OpenCL only.</summary>
    public bool OpenCLOnly { get; }

    /// <summary>Printable name: family/method&lt;type arguments&gt;.</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public override string ToString() => Name;

    private static bool IsOpenCLOnly(Type t) =>
        typeof(IOpenCLOnly).IsAssignableFrom(t) || (t.IsGenericType && t.GetGenericArguments().Any(IsOpenCLOnly));

    private static string TypeName(Type t) =>
        t.IsGenericType ? $"{t.Name[..t.Name.IndexOf('`')]}<{string.Join(", ", t.GetGenericArguments().Select(TypeName))}>" : t.Name;
}

/// <summary>A kernel method of a family and the schedule it implements.</summary>
/// <param name="Name">The method's name (nameof).</param>
/// <param name="Schedule">Null when the method serves both schedules.</param>
/// <param name="GroupSize">Threads per group of a GPU-shaped kernel.</param>
internal readonly record struct KernelMethod(string Name, KernelSchedule? Schedule = null, int? GroupSize = null);

/// <summary>
/// Every variant of one family's kernel methods: the methods times the cartesian product of the
/// lists of struct types their generic parameters take. A launcher picks a variant by indices
/// (method, then one index per generic parameter) without allocating, and it is compiled once per
/// accelerator on first use (through <see cref="DeviceContext.Kernel{TDelegate}"/>, keyed by the entry).
/// </summary>
internal sealed class KernelTable<TDelegate> where TDelegate : class
{
    private readonly KernelEntry[] _entries;
    private readonly Func<Accelerator, TDelegate>[] _loads;
    private readonly int[] _sizes;

    internal KernelTable(string family, Type owner, KernelGrouping grouping, Func<MethodInfo, Func<Accelerator, TDelegate>> loader,
        KernelMethod[] methods, Type[][] parameters)
    {
        _sizes = [methods.Length, .. parameters.Select(p => p.Length)];
        int count = _sizes.Aggregate(1, (a, b) => a * b);
        _entries = new KernelEntry[count];
        _loads = new Func<Accelerator, TDelegate>[count];
        var args = new Type[parameters.Length];
        for (int i = 0; i < count; i++)
        {
            int rest = i;
            for (int d = parameters.Length - 1; d >= 0; d--)
            {
                args[d] = parameters[d][rest % parameters[d].Length];
                rest /= parameters[d].Length;
            }
            var m = methods[rest];
            var method = owner.GetMethod(m.Name, BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                ?? throw new InvalidOperationException($"{owner.Name} has no kernel method {m.Name}");
            if (method.IsGenericMethodDefinition != parameters.Length > 0 || (parameters.Length > 0 && method.GetGenericArguments().Length != parameters.Length))
                throw new InvalidOperationException($"{owner.Name}.{m.Name} takes {method.GetGenericArguments().Length} type arguments; the table lists {parameters.Length}");
            if (parameters.Length > 0) method = method.MakeGenericMethod(args);
            _entries[i] = new KernelEntry(family, method, grouping, m.Schedule, m.GroupSize);
            _loads[i] = loader(method);
        }
    }

    /// <summary>Every variant, in index order.</summary>
    public IReadOnlyList<KernelEntry> Entries => _entries;

    /// <summary>The variant at (method, parameter indices…), loaded on <paramref name="ctx"/> on first use.</summary>
    public TDelegate Get(DeviceContext ctx, int method, params ReadOnlySpan<int> choice)
    {
        if (choice.Length != _sizes.Length - 1) throw new ArgumentException($"{_entries[0].Family}: {choice.Length} indices for {_sizes.Length - 1} type parameters");
        int i = method;
        for (int d = 0; d < choice.Length; d++) i = i * _sizes[d + 1] + choice[d];
        return ctx.Kernel(_entries[i], _loads[i]);
    }
}

/// <summary>Builds kernel tables for the two launch shapes.</summary>
internal static class KernelTables
{
    /// <summary>Kernels taking one argument struct, launched with a <see cref="KernelConfig"/>.</summary>
    public static KernelTable<Action<AcceleratorStream, KernelConfig, TArgs>> Explicit<TArgs>(string family, Type owner, KernelMethod[] methods, params Type[][] parameters)
        where TArgs : struct =>
        new(family, owner, KernelGrouping.Explicit, m =>
        {
            var d = m.CreateDelegate<Action<TArgs>>();
            return acc => acc.LoadKernel<TArgs>(d);
        }, methods, parameters);

    /// <summary>Kernels taking an <see cref="Index1D"/> and one argument struct, auto-grouped.</summary>
    public static KernelTable<Action<AcceleratorStream, Index1D, TArgs>> Implicit<TArgs>(string family, Type owner, KernelMethod[] methods, params Type[][] parameters)
        where TArgs : struct =>
        new(family, owner, KernelGrouping.Implicit, m =>
        {
            var d = m.CreateDelegate<Action<Index1D, TArgs>>();
            return acc => acc.LoadAutoGroupedKernel<Index1D, TArgs>(d);
        }, methods, parameters);

    /// <summary>The activations in <see cref="Activation"/>'s order.</summary>
    public static readonly Type[] Activations =
        [typeof(NoActivation), typeof(GeluActivation), typeof(GeluTanhActivation), typeof(QuickGeluActivation), typeof(SiluActivation), typeof(ReluActivation)];

    /// <summary>OpenCL's fma first (index 0), plain multiply-add second.</summary>
    public static readonly Type[] MulAdds = [typeof(OpenCLFma), typeof(PlainMulAdd)];

    /// <summary>Position of <typeparamref name="T"/> in a table's type list, or an error naming the family and the type.</summary>
    public static int IndexOf<T>(Type[] list, string family)
    {
        int i = Array.IndexOf(list, typeof(T));
        return i >= 0 ? i : throw new ArgumentException($"{typeof(T).Name} is not a listed variant of {family}: add it to the family's kernel table");
    }

    /// <summary>
    /// Work-items per group for a CPU-shaped (one tile per work-item) kernel: 1 on a CPU device
    /// (PoCL's SLP path), 64 independent tiles on a GPU that was forced onto the CPU schedule.
    /// </summary>
    public static KernelConfig PerItemConfig(DeviceContext ctx, long items)
    {
        int group = ctx.IsCpuLike ? 1 : 64;
        return new KernelConfig(checked((int)((items + group - 1) / group)), group);
    }

    /// <summary>Index into <see cref="MulAdds"/> for an accelerator.</summary>
    public static int MulAdd(DeviceContext ctx) => KernelMath.UsesOpenCLFma(ctx.Accelerator) ? 0 : 1;
}
