using BenchmarkDotNet.Attributes;
using OmniKernels.Audio;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Bench;

/// <summary>
/// MFCC (torchaudio's defaults) and Whisper's log-mel on 64 one-second 16 kHz clips, whose peer,
/// torchaudio 0.13, is timed by tools/bench_torchaudio_mfcc.py on the same clips after the run (Program); and patch embedding at
/// CLIP ViT-B/16's shape next to the plain GEMM of the same size, to report it as a fraction of the
/// GEMM's throughput.
/// </summary>
public class FrontEndBenchmarks : IDisposable
{
    public const int Clips = 64, ClipSamples = 16000;

    /// <summary>Where the MFCC benchmark leaves its clips for the torchaudio script.</summary>
    public static string ClipsPath => Path.Combine(BenchSetup.RepoRoot(), "BenchmarkDotNet.Artifacts", "mfcc_clips.npy");

    private DeviceContext _ctx = null!;
    private AudioFeatureExtractor _mfcc = null!, _whisper = null!;
    private List<float[]> _clips = null!;
    private PatchGrid _grid = null!;
    private PackedMatrix _patchWeight = null!;
    private Tensor _image = null!, _bias = null!, _cls = null!, _pos = null!, _tokens = null!, _a = null!, _c = null!;

    /// <summary>Speech-like test clips: a few harmonics with vibrato plus noise, seeded.</summary>
    public static List<float[]> MakeClips()
    {
        var rng = new Random(16000);
        var clips = new List<float[]>();
        for (int c = 0; c < Clips; c++)
        {
            var x = new float[ClipSamples];
            double f0 = 110 + 10 * c;
            for (int i = 0; i < x.Length; i++)
            {
                double t = i / 16000.0, f = f0 * (1 + 0.02 * Math.Sin(2 * Math.PI * 5 * t));
                x[i] = (float)(0.3 * Math.Sin(2 * Math.PI * f * t) + 0.15 * Math.Sin(4 * Math.PI * f * t) + 0.05 * (rng.NextDouble() - 0.5));
            }
            clips.Add(x);
        }
        return clips;
    }

    [GlobalSetup]
    public void Setup()
    {
        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        _clips = MakeClips();
        _mfcc = new AudioFeatureExtractor(_ctx, new AudioFeatureOptions());
        _whisper = new AudioFeatureExtractor(_ctx, AudioFeatureOptions.Whisper);
        Directory.CreateDirectory(Path.GetDirectoryName(ClipsPath)!);
        NpyFile.Write(ClipsPath, new NpyArray(NpyDType.Float32, [Clips, ClipSamples], _clips.SelectMany(c => c).ToArray()));

        const int b = 8, ch = 3, size = 224, patch = 16, d = 768;
        var rng = new Random(224);
        float[] R(long n) { var x = new float[n]; for (long i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1); return x; }
        _grid = PatchGrid.Create(_ctx, ch, size, size, patch);
        int n = _grid.Patches, k = _grid.PatchLength;
        using (var w = Tensor.FromHost<float>(_ctx, R((long)d * k), new Shape(d, k)))
            _patchWeight = PackedMatrix.Pack(_ctx, w.View, transposed: true);
        _image = Tensor.FromHost<float>(_ctx, R((long)b * ch * size * size), new Shape(b, ch, size, size));
        _bias = Tensor.FromHost<float>(_ctx, R(d), new Shape(d), GemmKernel.PanelWidth);
        _cls = Tensor.FromHost<float>(_ctx, R(d), new Shape(d));
        _pos = Tensor.FromHost<float>(_ctx, R((long)(n + 1) * d), new Shape(n + 1, d), GemmKernel.PanelWidth);
        _tokens = Tensor.Allocate(_ctx, DType.F32, new Shape(b, n + 1, d), GemmKernel.PanelWidth);
        _a = Tensor.FromHost<float>(_ctx, R((long)b * n * k), new Shape(b * n, k));
        _c = Tensor.Allocate(_ctx, DType.F32, new Shape(b * n, d), GemmKernel.PanelWidth);
        Mfcc();
        WhisperLogMel();
        PatchEmbed();
        Gemm();
    }

    [Benchmark(Description = "ILGPU MFCC, 64 × 1 s clips")]
    public void Mfcc() => _mfcc.Compute(_clips);

    [Benchmark(Description = "ILGPU Whisper log-mel, 64 × 1 s clips")]
    public void WhisperLogMel() => _whisper.Compute(_clips);

    [Benchmark(Description = "ILGPU patch embedding, 8 × 224² / 16, D 768")]
    public void PatchEmbed()
    {
        PatchEmbedKernel.Launch(_ctx, _image.View, _grid, _patchWeight.View, _tokens.View, _bias.View, _cls.View, _pos.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ILGPU GEMM of the same size, 1568 × 768 · 768 × 768")]
    public void Gemm()
    {
        GemmKernel.Launch(_ctx, _a.View, _patchWeight.View, _c.View);
        _ctx.Synchronize();
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var t in new[] { _c, _a, _tokens, _pos, _cls, _bias, _image }) t?.Dispose();
        _patchWeight?.Dispose();
        _grid?.Dispose();
        _whisper?.Dispose();
        _mfcc?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
