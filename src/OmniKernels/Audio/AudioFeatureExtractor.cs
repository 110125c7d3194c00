using OmniKernels.Kernels;

namespace OmniKernels.Audio;

/// <summary>Features of one clip, row-major [Rows, Frames] (Rows = n_mfcc or n_mels).</summary>
/// <param name="Values">Rows·Frames floats.</param>
/// <param name="Rows">Coefficients or mel bands.</param>
/// <param name="Frames">Time frames.</param>
public sealed record FeatureMatrix(float[] Values, int Rows, int Frames);

/// <summary>
/// MFCC and log-mel on the device, computing torchaudio's <c>MFCC</c>/<c>MelSpectrogram</c> (or
/// Whisper's log-mel) for a batch of clips of any lengths in one pass: the clips are reflect-padded
/// into one signal; frames are read in place as R interleaved sub-sequences whose windowed DFTs are
/// one batched GEMM, and a radix-R combine gives the power spectrum; then a banded mel GEMM (each
/// panel of bands over only the bins it covers), the log, the
/// per-clip top_db clamp and a DCT GEMM.
/// Create once per options and device (it packs the constant matrices); not thread-safe.
/// Ownership: dispose it; the returned matrices are plain arrays.
/// </summary>
public sealed class AudioFeatureExtractor : IDisposable
{
    private readonly DeviceContext _ctx;
    private readonly PackedMatrix _bases;
    private readonly Tensor _twiddles;
    private readonly Tensor _roots;
    private readonly BandedMatrix _mel;
    private readonly PackedMatrix? _dct;

    /// <summary>Packs the DFT basis, the mel filterbank and the DCT for <paramref name="options"/>.</summary>
    public AudioFeatureExtractor(DeviceContext ctx, AudioFeatureOptions options)
    {
        options.Validate();
        _ctx = ctx;
        Options = options;
        int bins = options.NFft / 2 + 1, r = AudioMatrices.Decimation(options.NFft), m = options.NFft / r;
        PackedMatrix? bases = null;
        BandedMatrix? mel = null;
        Tensor? twiddles = null, roots = null;
        try
        {
            bases = Pack(ctx, AudioMatrices.SubBases(options.NFft, options.Window, r), r, m, AudioMatrices.SubColumns(options.NFft, r));
            twiddles = Tensor.FromHost<float>(ctx, AudioMatrices.Twiddles(options.NFft, r), new Shape(r, 2, m / 2 + 1));
            roots = Tensor.FromHost<float>(ctx, AudioMatrices.Roots(r), new Shape(2, r));
            mel = BandedMatrix.Pack(ctx, AudioMatrices.MelFilterbank(bins, options.FMin, options.FMax ?? options.SampleRate / 2.0, options.NMels,
                options.SampleRate, options.Scale, options.Norm), bins, options.NMels);
            _dct = options.Kind == AudioFeatureKind.Mfcc ? Pack(ctx, AudioMatrices.Dct(options.NMfcc, options.NMels), 1, options.NMels, options.NMfcc) : null;
            _bases = bases;
            _twiddles = twiddles;
            _roots = roots;
            _mel = mel;
        }
        catch
        {
            mel?.Dispose();
            roots?.Dispose();
            twiddles?.Dispose();
            bases?.Dispose();
            throw;
        }
    }

    /// <summary>The options the extractor was made for.</summary>
    public AudioFeatureOptions Options { get; }

    private static PackedMatrix Pack(DeviceContext ctx, float[] matrix, int batch, int rows, int cols)
    {
        using var t = Tensor.FromHost<float>(ctx, matrix, batch == 1 ? new Shape(rows, cols) : new Shape(batch, rows, cols));
        var packed = PackedMatrix.Pack(ctx, t.View, transposed: false);
        ctx.Synchronize();
        return packed;
    }

    /// <summary>Frames torchaudio produces for a clip of <paramref name="samples"/> samples (centre padding), before Whisper drops its last.</summary>
    public int FramesFor(int samples) => 1 + (samples + 2 * (Options.NFft / 2) - Options.NFft) / Options.HopLength;

    /// <summary>
    /// Features of each clip (mono, at <see cref="AudioFeatureOptions.SampleRate"/>): MFCC [n_mfcc, frames]
    /// or Whisper log-mel [n_mels, frames]. A clip must be longer than n_fft/2 samples (reflect padding).
    /// </summary>
    public IReadOnlyList<FeatureMatrix> Compute(IReadOnlyList<float[]> clips)
    {
        ArgumentNullException.ThrowIfNull(clips);
        if (clips.Count == 0) throw new ArgumentException("no clips");
        var o = Options;
        int pad = o.NFft / 2, bins = o.NFft / 2 + 1;
        bool whisper = o.Kind == AudioFeatureKind.WhisperLogMel;
        var offsets = new long[clips.Count];
        var frames = new int[clips.Count];
        long length = 0;
        for (int c = 0; c < clips.Count; c++)
        {
            if (clips[c].Length <= pad)
                throw new ArgumentException($"clip {c} has {clips[c].Length} samples; reflect padding needs more than n_fft/2 = {pad}");
            offsets[c] = length;
            frames[c] = FramesFor(clips[c].Length) - (whisper ? 1 : 0);
            if (frames[c] < 1) throw new ArgumentException($"clip {c} is too short for one frame");
            length += clips[c].Length + 2 * pad;
        }
        var signal = new float[checked((int)length)];
        for (int c = 0; c < clips.Count; c++) ReflectPad(clips[c], pad, signal.AsSpan((int)offsets[c], clips[c].Length + 2 * pad));

        const int align = GemmKernel.PanelWidth;
        var ctx = _ctx;
        int r = AudioMatrices.Decimation(o.NFft);
        using var table = FrameTable.Create(ctx, o.NFft, o.HopLength, offsets, frames, r);
        long total = table.TotalFrames;
        using var tSignal = Tensor.FromHost<float>(ctx, signal, new Shape(length));
        using var sub = Tensor.Allocate(ctx, DType.F32, new Shape(r, total, _bases.View.N), align);
        using var power = Tensor.Allocate(ctx, DType.F32, new Shape(total, bins), align);
        using var mel = Tensor.Allocate(ctx, DType.F32, new Shape(total, o.NMels), align);
        using var clipMax = Tensor.Allocate(ctx, DType.F32, new Shape(clips.Count));
        SpectrogramKernel.SubSpectra(ctx, tSignal.View, table, _bases.View, sub.View);
        SpectrogramKernel.CombinePower(ctx, sub.View, table, _twiddles.View, _roots.View, power.View);
        GemmKernel.LaunchBanded(ctx, power.View, _mel, mel.View);
        Tensor? coefficients = null;
        try
        {
            if (whisper)
                SpectrogramKernel.LogClampBelowClipMax<Log10Floor>(ctx, mel.View, table, clipMax.View, 8f, 4f, 0.25f);
            else
            {
                if (o.LogMels) ElementwiseKernel.Activate<LogOffset>(ctx, mel.View, mel.View);
                else if (o.TopDb is { } topDb) SpectrogramKernel.LogClampBelowClipMax<PowerToDb>(ctx, mel.View, table, clipMax.View, (float)topDb);
                else ElementwiseKernel.Activate<PowerToDb>(ctx, mel.View, mel.View);
                coefficients = Tensor.Allocate(ctx, DType.F32, new Shape(total, o.NMfcc), align);
                GemmKernel.Launch(ctx, mel.View, _dct!.View, coefficients.View);
            }
            ctx.Synchronize();
            var result = (coefficients ?? mel).ToArray<float>();
            int rows = whisper ? o.NMels : o.NMfcc;
            var outputs = new FeatureMatrix[clips.Count];
            for (int c = 0, first = 0; c < clips.Count; first += frames[c], c++)
            {
                // The device holds [frames, rows]; callers get torchaudio's [rows, frames].
                var values = new float[rows * frames[c]];
                for (int f = 0; f < frames[c]; f++)
                    for (int row = 0; row < rows; row++)
                        values[row * frames[c] + f] = result[(first + f) * rows + row];
                outputs[c] = new FeatureMatrix(values, rows, frames[c]);
            }
            return outputs;
        }
        finally
        {
            coefficients?.Dispose();
        }
    }

    /// <summary>torch's reflect padding: x[−i] = x[i] and x[L − 1 + i] = x[L − 1 − i].</summary>
    private static void ReflectPad(ReadOnlySpan<float> x, int pad, Span<float> destination)
    {
        int n = x.Length;
        for (int i = 0; i < destination.Length; i++)
        {
            int j = i - pad;
            destination[i] = x[j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j];
        }
    }

    /// <summary>Returns the packed matrices to the pool.</summary>
    public void Dispose()
    {
        _dct?.Dispose();
        _mel.Dispose();
        _roots.Dispose();
        _twiddles.Dispose();
        _bases.Dispose();
    }
}
