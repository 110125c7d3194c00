using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>A binary pointwise operation as a struct, specialized at compile time.</summary>
public interface IBinaryOp
{
    /// <summary>The result for one pair of elements.</summary>
    float Apply(float a, float b);
}

/// <summary>a + b.</summary>
public readonly struct AddOp : IBinaryOp
{
    /// <inheritdoc/>
    public float Apply(float a, float b) => a + b;
}

/// <summary>a − b.</summary>
public readonly struct SubOp : IBinaryOp
{
    /// <inheritdoc/>
    public float Apply(float a, float b) => a - b;
}

/// <summary>max(a, b).</summary>
public readonly struct MaxOp : IBinaryOp
{
    /// <inheritdoc/>
    public float Apply(float a, float b) => MathF.Max(a, b);
}

/// <summary>min(a, b).</summary>
public readonly struct MinOp : IBinaryOp
{
    /// <inheritdoc/>
    public float Apply(float a, float b) => MathF.Min(a, b);
}

/// <summary>a · b.</summary>
public readonly struct MulOp : IBinaryOp
{
    /// <inheritdoc/>
    public float Apply(float a, float b) => a * b;
}

/// <summary>
/// Pointwise kernels over row-pitched 2D views: activations, add, mul, fill. One work-item per
/// element, auto-grouped (PoCL vectorizes consecutive work-items into SIMD lanes).
/// </summary>
public static class ElementwiseKernel
{
    internal struct Args
    {
        public ArrayView<float> A;
        public ArrayView<float> B;
        public ArrayView<float> Y;
        public long Cols, PitchA, PitchB, PitchY;
        public float Value;
    }

    // Groups of 64 columns of one row (x = column, y = row): no division per element, and PoCL packs
    // the 64 work-items of a group into SIMD lanes over consecutive addresses.
    private static void UnaryKernel<TAct>(Args g) where TAct : struct, IActivation
    {
        long r = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        g.Y[r * g.PitchY + c] = default(TAct).Apply(g.A[r * g.PitchA + c]);
    }

    private static void BinaryKernel<TOp>(Args g) where TOp : struct, IBinaryOp
    {
        long r = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        g.Y[r * g.PitchY + c] = default(TOp).Apply(g.A[r * g.PitchA + c], g.B[r * g.PitchB + c]);
    }

    private static void FillKernel(Index1D i, Args g) => g.Y[i] = g.Value;

    /// <summary>The activations <see cref="Activate{TAct}"/> is compiled for: the five of <see cref="Activation"/>, then the audio front end's logs.</summary>
    private static readonly Type[] UnaryOps = [.. KernelTables.Activations, typeof(PowerToDb), typeof(LogOffset), typeof(Log10Floor)];

    /// <summary>The operations <see cref="Binary{TOp}"/> is compiled for.</summary>
    private static readonly Type[] BinaryOps = [typeof(AddOp), typeof(SubOp), typeof(MulOp), typeof(MaxOp), typeof(MinOp)];

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Unary =
        KernelTables.Explicit<Args>("elementwise", typeof(ElementwiseKernel), [new(nameof(UnaryKernel))], UnaryOps);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Binaries =
        KernelTables.Explicit<Args>("elementwise", typeof(ElementwiseKernel), [new(nameof(BinaryKernel))], BinaryOps);

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, Args>> Fills =
        KernelTables.Implicit<Args>("elementwise", typeof(ElementwiseKernel), [new(nameof(FillKernel))]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Unary.Entries.Concat(Binaries.Entries).Concat(Fills.Entries);

    /// <summary>y = act(x), same shapes; x and y may be the same view.</summary>
    public static void Activate(DeviceContext ctx, Activation activation, TensorView x, TensorView y)
    {
        switch (activation)
        {
            case Activation.None: Activate<NoActivation>(ctx, x, y); break;
            case Activation.Gelu: Activate<GeluActivation>(ctx, x, y); break;
            case Activation.GeluTanh: Activate<GeluTanhActivation>(ctx, x, y); break;
            case Activation.QuickGelu: Activate<QuickGeluActivation>(ctx, x, y); break;
            case Activation.Silu: Activate<SiluActivation>(ctx, x, y); break;
            case Activation.Relu: Activate<ReluActivation>(ctx, x, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        }
    }

    /// <summary>y = TAct(x) for a struct activation listed in this family's table (others throw).</summary>
    public static void Activate<TAct>(DeviceContext ctx, TensorView x, TensorView y) where TAct : struct, IActivation
    {
        var (lx, ly) = CheckPair(x, y, "x");
        var k = Unary.Get(ctx, 0, KernelTables.IndexOf<TAct>(UnaryOps, "elementwise"));
        k(ctx.Stream, RowsConfig(ctx.Accelerator, lx.Rows, lx.Cols), new Args { A = x.Elements<float>(), B = x.Elements<float>(), Y = y.Elements<float>(), Cols = lx.Cols, PitchA = lx.Pitch, PitchY = ly.Pitch });
    }

    /// <summary>y = a + b, same shapes.</summary>
    public static void Add(DeviceContext ctx, TensorView a, TensorView b, TensorView y) => Binary<AddOp>(ctx, a, b, y);

    /// <summary>y = a · b, same shapes.</summary>
    public static void Mul(DeviceContext ctx, TensorView a, TensorView b, TensorView y) => Binary<MulOp>(ctx, a, b, y);

    /// <summary>y = TOp(a, b) for a struct operation listed in this family's table (others throw), same shapes.</summary>
    public static void Binary<TOp>(DeviceContext ctx, TensorView a, TensorView b, TensorView y) where TOp : struct, IBinaryOp
    {
        var (la, ly) = CheckPair(a, y, "a");
        var (lb, _) = CheckPair(b, y, "b");
        var k = Binaries.Get(ctx, 0, KernelTables.IndexOf<TOp>(BinaryOps, "elementwise"));
        k(ctx.Stream, RowsConfig(ctx.Accelerator, la.Rows, la.Cols), new Args { A = a.Elements<float>(), B = b.Elements<float>(), Y = y.Elements<float>(), Cols = la.Cols, PitchA = la.Pitch, PitchB = lb.Pitch, PitchY = ly.Pitch });
    }

    /// <summary>Sets every element of the view's storage span, padding included, to <paramref name="value"/> (NaN poisons outputs in tests).</summary>
    public static void Fill(DeviceContext ctx, TensorView y, float value)
    {
        Layout2D.CheckF32(y, "y");
        var l = Layout2D.Of(y, "y");
        long n = Math.Min(l.Rows * l.Pitch, y.Capacity);
        var k = Fills.Get(ctx, 0);
        k(ctx.Stream, checked((int)n), new Args { A = y.Elements<float>(), B = y.Elements<float>(), Y = y.Elements<float>(), Value = value });
    }

    private static (Layout2D In, Layout2D Out) CheckPair(in TensorView x, in TensorView y, string name)
    {
        Layout2D.CheckF32(x, name);
        Layout2D.CheckF32(y, "output");
        if (x.Shape != y.Shape)
            throw new ArgumentException($"{name} shape {x.Shape} differs from the output's {y.Shape}");
        return (Layout2D.Of(x, name), Layout2D.Of(y, "output"));
    }

    /// <summary>Rows × columns in groups of <see cref="RowGroup"/> columns (with the emulator's smaller limit).</summary>
    internal static KernelConfig RowsConfig(Accelerator accelerator, long rows, long cols)
    {
        int group = Math.Min(RowGroup, accelerator.MaxNumThreadsPerGroup);
        return new KernelConfig(new Index2D(checked((int)((cols + group - 1) / group)), checked((int)rows)), new Index2D(group, 1));
    }

    private const int RowGroup = 64;
}
