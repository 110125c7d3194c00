using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Where the frames of a batch of clips start in one concatenated, already padded signal, which
/// clip each frame belongs to, and the identity column table that lets the GEMM read frames in
/// place (no framing copy). Made once per batch layout; owned by its creator (dispose it).
/// </summary>
public sealed class FrameTable : IDisposable
{
    private FrameTable(int frameLength, int decimation, int[] clipFrames, Tensor starts, Tensor columns, Tensor clipOfFrame, Tensor clipFirstFrame)
    {
        FrameLength = frameLength;
        Decimation = decimation;
        ClipFrames = clipFrames;
        Starts = starts;
        Columns = columns;
        ClipOfFrame = clipOfFrame;
        ClipFirstFrame = clipFirstFrame;
    }

    /// <summary>Samples per frame (n_fft).</summary>
    public int FrameLength { get; }

    /// <summary>R: the frame is read as R interleaved sub-sequences of n_fft / R samples (sample R·m + r).</summary>
    public int Decimation { get; }

    /// <summary>Samples per sub-sequence, n_fft / R.</summary>
    public int SubLength => FrameLength / Decimation;

    /// <summary>Frames of each clip, in order.</summary>
    public IReadOnlyList<int> ClipFrames { get; }

    /// <summary>All frames of all clips.</summary>
    public int TotalFrames => ClipFrames.Sum();

    internal Tensor Starts { get; }
    internal Tensor Columns { get; }
    internal Tensor ClipOfFrame { get; }
    internal Tensor ClipFirstFrame { get; }

    /// <summary>
    /// Frame f of clip c starts at <paramref name="clipOffsets"/>[c] + f·<paramref name="hop"/> in the
    /// signal; clip c has <paramref name="clipFrames"/>[c] frames of <paramref name="frameLength"/> samples,
    /// read as <paramref name="decimation"/> interleaved sub-sequences (a divisor of the frame length).
    /// </summary>
    public static FrameTable Create(DeviceContext ctx, int frameLength, int hop, IReadOnlyList<long> clipOffsets, IReadOnlyList<int> clipFrames, int decimation = 1)
    {
        if (decimation < 1 || frameLength % decimation != 0)
            throw new ArgumentException($"decimation {decimation} must divide the frame length {frameLength}");
        if (clipOffsets.Count != clipFrames.Count || clipFrames.Count == 0)
            throw new ArgumentException("one offset and one frame count per clip, at least one clip");
        if (frameLength <= 0 || hop <= 0 || clipFrames.Any(f => f <= 0))
            throw new ArgumentException("frame length, hop and every clip's frame count must be positive");
        int total = clipFrames.Sum();
        var starts = new int[total];
        var clipOf = new int[total];
        var first = new int[clipFrames.Count + 1];
        for (int c = 0, r = 0; c < clipFrames.Count; c++)
        {
            first[c] = r;
            for (int f = 0; f < clipFrames[c]; f++, r++)
            {
                starts[r] = checked((int)(clipOffsets[c] + (long)f * hop));
                clipOf[r] = c;
            }
        }
        first[^1] = total;
        var taken = new List<Tensor>();
        try
        {
            Tensor Up(int[] a) { var t = Tensor.FromHost<int>(ctx, a, new Shape(a.Length)); taken.Add(t); return t; }
            var columns = Enumerable.Range(0, frameLength / decimation).Select(m => m * decimation).ToArray();
            return new FrameTable(frameLength, decimation, [.. clipFrames], Up(starts), Up(columns), Up(clipOf), Up(first));
        }
        catch
        {
            foreach (var t in taken) t.Dispose();
            throw;
        }
    }

    /// <summary>Returns the tables to the pool.</summary>
    public void Dispose()
    {
        ClipFirstFrame.Dispose();
        ClipOfFrame.Dispose();
        Columns.Dispose();
        Starts.Dispose();
    }
}

/// <summary>10·log10(max(x, 1e-10)): torchaudio's AmplitudeToDB for power, ref 1.</summary>
public readonly struct PowerToDb : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => 4.3429448190325182f * default(NaturalLog).Apply(MathF.Max(x, 1e-10f));
}

/// <summary>ln(x + 1e-6): torchaudio MFCC's log_mels.</summary>
public readonly struct LogOffset : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => default(NaturalLog).Apply(x + 1e-6f);
}

/// <summary>log10(max(x, 1e-10)): Whisper's log-mel before its clamp.</summary>
public readonly struct Log10Floor : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => 0.43429448190325182f * default(NaturalLog).Apply(MathF.Max(x, 1e-10f));
}

/// <summary>
/// Spectrogram stages for the audio front end. The short-time Fourier transform is one decimation
/// step of an FFT: each frame is read in place (no framing copy) as R interleaved sub-sequences,
/// whose windowed DFTs are one batched GEMM against precomputed bases (window folded in), and a
/// radix-R combine with twiddles yields the power spectrum directly; that does 1/R of a plain DFT
/// GEMM's multiply-adds. Then the log fused with the per-clip clamp below the clip's maximum (top_db,
/// Whisper's max − 8).
/// Log transforms are <see cref="ElementwiseKernel.Activate{TAct}"/> with the structs above; the mel
/// filterbank and the DCT are plain GEMMs.
/// </summary>
public static class SpectrogramKernel
{
    /// <summary>
    /// Sub-spectra of every frame: sub[r, t] = (sub-sequence r of frame t) · bases[r], one batched GEMM
    /// whose A is read in place through <paramref name="frames"/> (batch r starts r samples later).
    /// bases is the packed [R, n_fft/R, C] windowed DFT of the sub-sequences; sub is [R, frames, C] row-padded.
    /// </summary>
    public static void SubSpectra(DeviceContext ctx, TensorView signal, FrameTable frames, PackedMatrixView bases, TensorView sub)
    {
        Layout2D.CheckF32(signal, "signal");
        Layout2D.CheckF32(sub, "sub");
        if (signal.Shape.Rank != 1 || signal.Strides[0] != 1) throw new ArgumentException($"signal {signal} must be dense 1-D");
        if (bases.K != frames.SubLength || bases.Batch != frames.Decimation)
            throw new ArgumentException($"bases are {bases.Batch} × K {bases.K}; frames are read as {frames.Decimation} sub-sequences of {frames.SubLength}");
        var expect = new Shape(frames.Decimation, frames.TotalFrames, bases.N);
        if (sub.Shape != expect) throw new ArgumentException($"sub {sub.Shape} must be {expect}");
        long pitch = sub.Strides[1];
        if (sub.Strides[2] != 1 || pitch < bases.PaddedN || sub.Strides[0] < frames.TotalFrames * pitch ||
            (frames.Decimation - 1) * sub.Strides[0] + (frames.TotalFrames - 1) * pitch + bases.PaddedN > sub.Capacity)
            throw new ArgumentException($"sub {sub}: row pitch must be at least {bases.PaddedN} (allocate with rowAlignment {GemmKernel.PanelWidth})");
        long rowTiles = (frames.TotalFrames + GemmKernel.TileRows - 1) / GemmKernel.TileRows;
        var args = new GemmKernel.Args
        {
            A = signal.Elements<float>(), B = bases.Panels.Elements<float>(), C = sub.Elements<float>(),
            Bias = sub.Elements<float>(), Res = sub.Elements<float>(),
            ARows = frames.Starts.View.Elements<int>(), ACols = frames.Columns.View.Elements<int>(),
            M = frames.TotalFrames, K = bases.K, Ldc = pitch, RowTiles = rowTiles, Panels = bases.PanelCount,
            BatchA = 1, BatchB = bases.Panels.Strides[0], BatchC = sub.Strides[0],
            Total = checked(rowTiles * bases.PanelCount * frames.Decimation),
        };
        GemmKernel.Launch<GemmKernel.GatheredA>(ctx, args, Activation.None, bias: false, residual: false);
    }

    internal struct CombineArgs
    {
        public ArrayView<float> Sub, Twiddles, Roots, Power;
        public long M, Half, Pitch, Plane, PitchP, Blocks, Items;
    }

    /// <summary>The decimation R, a compile-time constant so that the combine's loops unroll and its root indices fold.</summary>
    internal interface IRadix
    {
        int R { get; }
    }

    internal readonly struct Radix1 : IRadix
    {
        public int R => 1;
    }

    internal readonly struct Radix2 : IRadix
    {
        public int R => 2;
    }

    internal readonly struct Radix4 : IRadix
    {
        public int R => 4;
    }

    /// <summary>The radices <see cref="CombinePower"/> is compiled for (the decimations the front end picks).</summary>
    private static readonly Type[] Radices = [typeof(Radix1), typeof(Radix2), typeof(Radix4)];

    // Which outputs sub-bin j gives, for every j ∈ [0, H] without a condition: R = 1 stores X[j] only. For R ≥ 2
    // and q < R/2 it stores X[qM + j] and the mirror X[(q + 1)M − j]; those cover 0 … n_fft/2 exactly, and the two
    // places where they meet (j = 0 gives X[(q + 1)M], j = M/2 for even M gives X[qM + j] twice) receive the same
    // value from the same work-item, since Y_r[M] = Y_r[0] and Y_r[M/2] is real.
    private static int Halves(int radix) => radix == 1 ? 1 : radix / 2;

    /// <summary>How many of a block's 16 lanes are distinct sub-bins, resolved at compile time.</summary>
    internal interface IBlockLanes
    {
        long Lanes(long available);
    }

    /// <summary>All sixteen (H + 1 ≥ 16): consecutive vector loads and stores.</summary>
    internal readonly struct WholeBlock : IBlockLanes
    {
        public long Lanes(long available) => Vec16Width;
    }

    /// <summary>Fewer (H + 1 &lt; 16, tiny n_fft): lanes past H repeat sub-bin H, so their repeated stores are identical.</summary>
    internal readonly struct ClampedBlock : IBlockLanes
    {
        public long Lanes(long available) => available;
    }

    private struct CxV
    {
        public Vec16 Re, Im;
    }

    // Sub-bins j0 … j0 + lanes − 1 of sub-spectrum r, twiddled (vector loads when lanes is the constant 16).
    private static CxV TwiddledBlock(CombineArgs g, long r, long t, long j0, long lanes)
    {
        long row = r * g.Plane + t * g.Pitch, w = 2 * r * (g.Half + 1) + j0;
        var yr = Vec16.LoadRows(g.Sub, row + j0, 1, lanes);
        var yi = Vec16.LoadRows(g.Sub, row + g.Half + 1 + j0, 1, lanes);
        var wr = Vec16.LoadRows(g.Twiddles, w, 1, lanes);
        var wi = Vec16.LoadRows(g.Twiddles, w + g.Half + 1, 1, lanes);
        CxV z;
        z.Re = wr;
        z.Re.Zip<MulOp>(yr);
        var s = wi;
        s.Zip<MulOp>(yi);
        z.Re.Zip<SubOp>(s);
        z.Im = wr;
        z.Im.Zip<MulOp>(yi);
        s = wi;
        s.Zip<MulOp>(yr);
        z.Im.Zip<AddOp>(s);
        return z;
    }

    // |Σ_r W_R^{r·p}·z_r|² over a block (every z_r conjugated when mirror is set); W_R^p = roots[p mod R], scalars.
    private static Vec16 PowerOfBlock<TRadix, TMul>(CombineArgs g, long p, bool mirror, in CxV z0, in CxV z1, in CxV z2, in CxV z3)
        where TRadix : struct, IRadix where TMul : struct, IMulAdd
    {
        int radix = default(TRadix).R;
        float sign = mirror ? -1f : 1f;
        Vec16 xr = default, xi = default;
        for (int r = 0; r < radix; r++)
        {
            var z = r == 0 ? z0 : r == 1 ? z1 : r == 2 ? z2 : z3;
            long e = r * p % radix;
            float c = g.Roots[e], s = g.Roots[radix + e];
            xr.Fma<TMul>(c, z.Re);
            xr.Fma<TMul>(-s * sign, z.Im);
            xi.Fma<TMul>(c * sign, z.Im);
            xi.Fma<TMul>(s, z.Re);
        }
        xr.Zip<MulOp>(xr);
        xi.Zip<MulOp>(xi);
        xr.Zip<AddOp>(xi);
        return xr;
    }

    // One work-item per (frame, block of 16 sub-bins): the butterfly as straight-line 16-lane code with
    // consecutive, unconditional stores, which SLP vectorizes (a work-item per sub-bin stayed scalar: LLVM
    // "cannot identify array bounds"). The last block is shifted to end at H; the sub-bins it shares with the
    // one before are computed twice, identically. The mirrored half is stored in descending order.
    private static void CombineBlockKernel<TRadix, TMul, TLanes>(CombineArgs g)
        where TRadix : struct, IRadix where TMul : struct, IMulAdd where TLanes : struct, IBlockLanes
    {
        int radix = default(TRadix).R;
        long i = Grid.GlobalIndex.X;
        if (i >= g.Items) return;
        long t = i / g.Blocks, j0 = Max(0, Min(i % g.Blocks * Vec16Width, g.Half + 1 - Vec16Width));
        long lanes = default(TLanes).Lanes(g.Half + 1 - j0);
        CxV zero = default;
        CxV z0 = TwiddledBlock(g, 0, t, j0, lanes);
        CxV z1 = radix > 1 ? TwiddledBlock(g, 1, t, j0, lanes) : zero;
        CxV z2 = radix > 2 ? TwiddledBlock(g, 2, t, j0, lanes) : zero;
        CxV z3 = radix > 3 ? TwiddledBlock(g, 3, t, j0, lanes) : zero;
        long o = t * g.PitchP;
        for (int q = 0; q < Halves(radix); q++)
        {
            PowerOfBlock<TRadix, TMul>(g, q, false, z0, z1, z2, z3).StoreRows(g.Power, o + q * g.M + j0, 1, lanes);
            if (radix > 1) PowerOfBlock<TRadix, TMul>(g, q + 1, true, z0, z1, z2, z3).StoreRows(g.Power, o + (q + 1) * g.M - j0, -1, lanes);
        }
    }

    private const int Vec16Width = 16;

    private static long Min(long a, long b) => a < b ? a : b;

    private static long Max(long a, long b) => a > b ? a : b;

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, CombineArgs>> CombineBlocks =
        KernelTables.Explicit<CombineArgs>("spectrogram", typeof(SpectrogramKernel), [new(nameof(CombineBlockKernel))],
            Radices, KernelTables.MulAdds, [typeof(WholeBlock), typeof(ClampedBlock)]);

    /// <summary>
    /// power[t, k] = |X_t[k]|² for k &lt; F = n_fft/2 + 1: the last radix-R step of the FFT fused with the
    /// power spectrum. sub is [R, frames, C] from <see cref="SubSpectra"/>, C = 2(H + 1) with H = M/2, M = n_fft/R:
    /// columns 0 … H hold Re Y_r[j], columns H + 1 … 2H + 1 Im Y_r[j]; twiddles [R, 2, H + 1] hold
    /// (cos, −sin)(2π·r·j/n_fft); roots [2, R] hold (cos, −sin)(2π·p/R); power is [frames, F].
    /// </summary>
    public static void CombinePower(DeviceContext ctx, TensorView sub, FrameTable frames, TensorView twiddles, TensorView roots, TensorView power)
    {
        Layout2D.CheckF32(sub, "sub");
        Layout2D.CheckF32(twiddles, "twiddles");
        Layout2D.CheckF32(roots, "roots");
        Layout2D.CheckF32(power, "power");
        var lp = Layout2D.Of(power, "power");
        long r = frames.Decimation, m = frames.SubLength, half = m / 2;
        if (lp.Rows != frames.TotalFrames || lp.Cols != frames.FrameLength / 2 + 1)
            throw new ArgumentException($"power {power.Shape} must be [{frames.TotalFrames}, {frames.FrameLength / 2 + 1}]");
        if (sub.Shape != new Shape(r, frames.TotalFrames, 2 * (half + 1)) || sub.Strides[2] != 1)
            throw new ArgumentException($"sub {sub.Shape} must be dense rows of [{r}, {frames.TotalFrames}, {2 * (half + 1)}]");
        if (twiddles.Shape != new Shape(r, 2, half + 1) || twiddles.Strides != twiddles.Shape.RowMajorStrides())
            throw new ArgumentException($"twiddles {twiddles.Shape} must be dense [{r}, 2, {half + 1}]");
        if (roots.Shape != new Shape(2, r) || roots.Strides != roots.Shape.RowMajorStrides())
            throw new ArgumentException($"roots {roots.Shape} must be dense [2, {r}]");
        int radix = r switch { 1 => 0, 2 => 1, 4 => 2, _ => throw new ArgumentException($"the combine is built for decimations 1, 2 and 4; the frames use {r}") };
        var args = new CombineArgs
        {
            Sub = sub.Elements<float>(), Twiddles = twiddles.Elements<float>(), Roots = roots.Elements<float>(), Power = power.Elements<float>(),
            M = m, Half = half, Pitch = sub.Strides[1], Plane = sub.Strides[0], PitchP = lp.Pitch,
        };
        args.Blocks = (half + Vec16Width) / Vec16Width;
        args.Items = lp.Rows * args.Blocks;
        int lanes = half + 1 >= Vec16Width ? 0 : 1;
        CombineBlocks.Get(ctx, 0, radix, KernelTables.MulAdd(ctx), lanes)(ctx.Stream, KernelTables.PerItemConfig(ctx, args.Items), args);
    }

    internal struct ClampArgs
    {
        public ArrayView<float> X, Max;
        public ArrayView<int> ClipOf, First;
        public long Cols, Pitch;
        public float Range, Offset, Scale;
    }

    // One work-item per clip: clips are few and their spectrograms small. Stores log(max).
    private static void ClipMaxKernel<TLog>(Index1D clip, ClampArgs g) where TLog : struct, IActivation
    {
        float max = float.NegativeInfinity;
        for (long r = g.First[clip]; r < g.First[clip + 1]; r++)
            for (long c = 0; c < g.Cols; c++) max = MathF.Max(max, g.X[r * g.Pitch + c]);
        g.Max[clip] = default(TLog).Apply(max);
    }

    // The log is monotonic, so the clip's maximum is taken on the linear values and logged once:
    // log and clamp are one pass.
    private static void LogClampKernel<TLog>(ClampArgs g) where TLog : struct, IActivation
    {
        long r = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        long o = r * g.Pitch + c;
        var log = default(TLog);
        g.X[o] = (MathF.Max(log.Apply(g.X[o]), g.Max[g.ClipOf[r]] - g.Range) + g.Offset) * g.Scale;
    }

    /// <summary>The logs <see cref="LogClampBelowClipMax{TLog}"/> is compiled for.</summary>
    private static readonly Type[] Logs = [typeof(PowerToDb), typeof(Log10Floor)];

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, ClampArgs>> ClipMax =
        KernelTables.Implicit<ClampArgs>("spectrogram", typeof(SpectrogramKernel), [new(nameof(ClipMaxKernel))], Logs);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, ClampArgs>> LogClamp =
        KernelTables.Explicit<ClampArgs>("spectrogram", typeof(SpectrogramKernel), [new(nameof(LogClampKernel))], Logs);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => CombineBlocks.Entries.Concat(ClipMax.Entries).Concat(LogClamp.Entries);

    /// <summary>
    /// In place, per clip: x = (max(log x, log clipMax − range) + offset)·scale, clipMax over the clip's
    /// whole [frames, bins] block of linear values, for a monotonic log <typeparamref name="TLog"/>
    /// (torchaudio's top_db: <see cref="PowerToDb"/>, range 80, offset 0, scale 1; Whisper:
    /// <see cref="Log10Floor"/>, 8, 4, ¼). <paramref name="clipMax"/> is scratch of at least one float per clip.
    /// </summary>
    public static void LogClampBelowClipMax<TLog>(DeviceContext ctx, TensorView x, FrameTable frames, TensorView clipMax, float range, float offset = 0f, float scale = 1f)
        where TLog : struct, IActivation
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(clipMax, "clipMax");
        var l = Layout2D.Of(x, "x");
        if (l.Rows != frames.TotalFrames) throw new ArgumentException($"x {x.Shape} must have one row per frame ({frames.TotalFrames})");
        if (clipMax.Capacity < frames.ClipFrames.Count) throw new ArgumentException($"clipMax needs {frames.ClipFrames.Count} floats");
        if (!(range >= 0f) || !float.IsFinite(offset) || !float.IsFinite(scale)) throw new ArgumentException("range must be non-negative, offset and scale finite");
        var args = new ClampArgs
        {
            X = x.Elements<float>(), Max = clipMax.Elements<float>(), ClipOf = frames.ClipOfFrame.View.Elements<int>(),
            First = frames.ClipFirstFrame.View.Elements<int>(), Cols = l.Cols, Pitch = l.Pitch, Range = range, Offset = offset, Scale = scale,
        };
        int log = KernelTables.IndexOf<TLog>(Logs, "spectrogram");
        ClipMax.Get(ctx, 0, log)(ctx.Stream, frames.ClipFrames.Count, args);
        LogClamp.Get(ctx, 0, log)(ctx.Stream, ElementwiseKernel.RowsConfig(ctx.Accelerator, l.Rows, l.Cols), args);
    }
}
