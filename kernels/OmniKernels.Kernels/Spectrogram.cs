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
    private FrameTable(int frameLength, int[] clipFrames, Tensor starts, Tensor columns, Tensor clipOfFrame, Tensor clipFirstFrame)
    {
        FrameLength = frameLength;
        ClipFrames = clipFrames;
        Starts = starts;
        Columns = columns;
        ClipOfFrame = clipOfFrame;
        ClipFirstFrame = clipFirstFrame;
    }

    /// <summary>Samples per frame (n_fft).</summary>
    public int FrameLength { get; }

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
    /// signal; clip c has <paramref name="clipFrames"/>[c] frames of <paramref name="frameLength"/> samples.
    /// </summary>
    public static FrameTable Create(DeviceContext ctx, int frameLength, int hop, IReadOnlyList<long> clipOffsets, IReadOnlyList<int> clipFrames)
    {
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
            return new FrameTable(frameLength, [.. clipFrames], Up(starts), Up(Enumerable.Range(0, frameLength).ToArray()), Up(clipOf), Up(first));
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
/// Spectrogram stages for the audio front end: the short-time Fourier transform as a GEMM over
/// frames read in place (the windowed DFT basis is B, so framing, window and DFT are one GEMM),
/// the power spectrum, and the per-clip clamp below the clip's maximum (top_db, Whisper's max − 8).
/// Log transforms are <see cref="ElementwiseKernel.Activate{TAct}"/> with the structs above; the mel
/// filterbank and the DCT are plain GEMMs.
/// </summary>
public static class SpectrogramKernel
{
    /// <summary>
    /// spectrum[r] = frame r · basis: frames of <paramref name="signal"/> (dense, padded) located by
    /// <paramref name="frames"/>; basis is the packed [n_fft, N] DFT matrix; spectrum is [frames, N] row-padded.
    /// </summary>
    public static void Stft(DeviceContext ctx, TensorView signal, FrameTable frames, PackedMatrixView basis, TensorView spectrum)
    {
        Layout2D.CheckF32(signal, "signal");
        Layout2D.CheckF32(spectrum, "spectrum");
        if (signal.Shape.Rank != 1 || signal.Strides[0] != 1) throw new ArgumentException($"signal {signal} must be dense 1-D");
        if (basis.K != frames.FrameLength || basis.Batch != 1)
            throw new ArgumentException($"basis has K = {basis.K}; frames have {frames.FrameLength} samples");
        var expect = new Shape(frames.TotalFrames, basis.N);
        if (spectrum.Shape != expect) throw new ArgumentException($"spectrum {spectrum.Shape} must be {expect}");
        var l = Layout2D.Of(spectrum, "spectrum");
        if (l.Pitch < basis.PaddedN || (l.Rows - 1) * l.Pitch + basis.PaddedN > spectrum.Capacity)
            throw new ArgumentException($"spectrum {spectrum}: row pitch must be at least {basis.PaddedN} (allocate with rowAlignment {GemmKernel.PanelWidth})");
        long rowTiles = (frames.TotalFrames + GemmKernel.TileRows - 1) / GemmKernel.TileRows;
        var args = new GemmKernel.Args
        {
            A = signal.Elements<float>(), B = basis.Panels.Elements<float>(), C = spectrum.Elements<float>(),
            Bias = spectrum.Elements<float>(), Res = spectrum.Elements<float>(),
            ARows = frames.Starts.View.Elements<int>(), ACols = frames.Columns.View.Elements<int>(),
            M = frames.TotalFrames, K = basis.K, Ldc = l.Pitch, RowTiles = rowTiles, Panels = basis.PanelCount,
            Total = checked(rowTiles * basis.PanelCount),
        };
        GemmKernel.Launch<GemmKernel.GatheredA>(ctx, args, Activation.None, bias: false, residual: false);
    }

    internal struct PowerArgs
    {
        public ArrayView<float> X, Y;
        public long Bins, ImagLast, PitchX, PitchY;
    }

    // x = bin, y = frame. Bins without a stored imaginary part read a clamped neighbour times 0:
    // branch-free, so the row vectorizes.
    private static void PowerKernel(PowerArgs g)
    {
        long r = Grid.GlobalIndex.Y, f = Grid.GlobalIndex.X;
        if (f >= g.Bins) return;
        float re = g.X[r * g.PitchX + f];
        long j = f < 1 ? 1 : f > g.ImagLast ? g.ImagLast : f;
        float has = Min1(f) * Min1(g.ImagLast + 1 - f);
        float im = g.X[r * g.PitchX + g.Bins + j - 1] * has;
        g.Y[r * g.PitchY + f] = re * re + im * im;
    }

    /// <summary>1 for v ≥ 1, 0 for v ≤ 0.</summary>
    private static float Min1(long v) => v < 0 ? 0f : v > 1 ? 1f : v;

    private static readonly object PowerKey = new();
    private static readonly Func<Accelerator, Action<AcceleratorStream, KernelConfig, PowerArgs>> PowerLoad =
        acc => acc.LoadKernel<PowerArgs>(PowerKernel);

    /// <summary>
    /// power[r, f] = re² + im² from a spectrum row holding the F real parts, then the imaginary parts
    /// of bins 1 … I (bin 0's is always zero, and so is the Nyquist bin's for even n_fft, so the basis
    /// leaves them out): F + I columns.
    /// </summary>
    public static void Power(DeviceContext ctx, TensorView spectrum, TensorView power)
    {
        Layout2D.CheckF32(spectrum, "spectrum");
        Layout2D.CheckF32(power, "power");
        var ls = Layout2D.Of(spectrum, "spectrum");
        var lp = Layout2D.Of(power, "power");
        long imag = ls.Cols - lp.Cols;
        if (ls.Rows != lp.Rows || imag < 0 || imag > lp.Cols - 1)
            throw new ArgumentException($"spectrum {spectrum.Shape} must be [rows, F + I] with I < F for power {power.Shape}");
        ctx.Kernel(PowerKey, PowerLoad)(ctx.Stream, ElementwiseKernel.RowsConfig(ctx.Accelerator, lp.Rows, lp.Cols),
            new PowerArgs { X = spectrum.Elements<float>(), Y = power.Elements<float>(), Bins = lp.Cols, ImagLast = imag, PitchX = ls.Pitch, PitchY = lp.Pitch });
    }

    internal struct ClampArgs
    {
        public ArrayView<float> X, Max;
        public ArrayView<int> ClipOf, First;
        public long Cols, Pitch;
        public float Range, Offset, Scale;
    }

    // One work-item per clip: clips are few and their spectrograms small.
    private static void ClipMaxKernel(Index1D clip, ClampArgs g)
    {
        float max = float.NegativeInfinity;
        for (long r = g.First[clip]; r < g.First[clip + 1]; r++)
            for (long c = 0; c < g.Cols; c++) max = MathF.Max(max, g.X[r * g.Pitch + c]);
        g.Max[clip] = max;
    }

    private static void ClampKernel(ClampArgs g)
    {
        long r = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        long o = r * g.Pitch + c;
        g.X[o] = (MathF.Max(g.X[o], g.Max[g.ClipOf[r]] - g.Range) + g.Offset) * g.Scale;
    }

    private static readonly object MaxKey = new(), ClampKey = new();
    private static readonly Func<Accelerator, Action<AcceleratorStream, Index1D, ClampArgs>> MaxLoad =
        acc => acc.LoadAutoGroupedKernel<Index1D, ClampArgs>(ClipMaxKernel);
    private static readonly Func<Accelerator, Action<AcceleratorStream, KernelConfig, ClampArgs>> ClampLoad =
        acc => acc.LoadKernel<ClampArgs>(ClampKernel);

    /// <summary>
    /// In place, per clip: x = (max(x, clipMax − range) + offset)·scale, clipMax over the clip's whole
    /// [frames, bins] block (torchaudio's top_db: range 80, offset 0, scale 1; Whisper: 8, 4, ¼).
    /// <paramref name="clipMax"/> is scratch of at least one float per clip.
    /// </summary>
    public static void ClampBelowClipMax(DeviceContext ctx, TensorView x, FrameTable frames, TensorView clipMax, float range, float offset = 0f, float scale = 1f)
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
        ctx.Kernel(MaxKey, MaxLoad)(ctx.Stream, frames.ClipFrames.Count, args);
        ctx.Kernel(ClampKey, ClampLoad)(ctx.Stream, ElementwiseKernel.RowsConfig(ctx.Accelerator, l.Rows, l.Cols), args);
    }
}
