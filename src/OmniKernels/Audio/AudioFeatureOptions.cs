namespace OmniKernels.Audio;

/// <summary>Mel scale of the filterbank (torchaudio's <c>mel_scale</c>).</summary>
public enum MelScale
{
    /// <summary>2595·log10(1 + f/700).</summary>
    Htk,
    /// <summary>Slaney's: linear below 1 kHz, logarithmic above (librosa's default).</summary>
    Slaney,
}

/// <summary>Normalization of each mel filter (torchaudio's <c>norm</c>).</summary>
public enum MelNorm
{
    /// <summary>Triangles of peak 1.</summary>
    None,
    /// <summary>Each triangle divided by its width in Hz (area normalization), ×2.</summary>
    Slaney,
}

/// <summary>What the front end outputs.</summary>
public enum AudioFeatureKind
{
    /// <summary>MFCC: mel power → dB (top_db clamp over the clip) or ln(x + 1e-6) → DCT-II (ortho), [n_mfcc, frames].</summary>
    Mfcc,
    /// <summary>Whisper's log-mel: log10(max(x, 1e-10)), clamp to clip max − 8, (x + 4)/4, last frame dropped, [n_mels, frames].</summary>
    WhisperLogMel,
}

/// <summary>
/// Options of the audio front end. The defaults are exactly <c>torchaudio.transforms.MFCC()</c>'s
/// (torchaudio 0.13): 16 kHz, n_mfcc 40, n_fft 400, win_length 400, hop 200, 128 HTK mels without
/// norm, f_min 0, f_max sample_rate/2, power spectrum, centre reflect padding, periodic Hann, dB
/// with top_db 80, DCT-II ortho.
/// </summary>
public sealed record AudioFeatureOptions
{
    /// <summary>Rate the features are computed at; other rates are resampled to it.</summary>
    public int SampleRate { get; init; } = 16000;

    /// <summary>FFT size.</summary>
    public int NFft { get; init; } = 400;

    /// <summary>Window length; null means n_fft. The Hann window is centred in the n_fft frame.</summary>
    public int? WinLength { get; init; }

    /// <summary>Hop; null means win_length / 2.</summary>
    public int? Hop { get; init; }

    /// <summary>Mel bands.</summary>
    public int NMels { get; init; } = 128;

    /// <summary>Lowest filter edge in Hz.</summary>
    public double FMin { get; init; }

    /// <summary>Highest filter edge in Hz; null means sample_rate / 2.</summary>
    public double? FMax { get; init; }

    /// <summary>Mel scale.</summary>
    public MelScale Scale { get; init; } = MelScale.Htk;

    /// <summary>Filter normalization.</summary>
    public MelNorm Norm { get; init; } = MelNorm.None;

    /// <summary>Coefficients kept by the DCT.</summary>
    public int NMfcc { get; init; } = 40;

    /// <summary>ln(mel + 1e-6) instead of dB (torchaudio's log_mels).</summary>
    public bool LogMels { get; init; }

    /// <summary>dB floor below the clip's maximum; null disables it (only for dB).</summary>
    public double? TopDb { get; init; } = 80;

    /// <summary>MFCC or Whisper's log-mel.</summary>
    public AudioFeatureKind Kind { get; init; } = AudioFeatureKind.Mfcc;

    /// <summary>Effective window length.</summary>
    public int Window => WinLength ?? NFft;

    /// <summary>Effective hop.</summary>
    public int HopLength => Hop ?? Window / 2;

    /// <summary>Whisper's front end: 16 kHz, n_fft 400, hop 160, 80 Slaney mels with Slaney norm up to 8 kHz.</summary>
    public static AudioFeatureOptions Whisper { get; } = new()
    {
        NFft = 400, Hop = 160, NMels = 80, FMax = 8000, Scale = MelScale.Slaney, Norm = MelNorm.Slaney, Kind = AudioFeatureKind.WhisperLogMel,
    };

    /// <summary>Throws naming the first option that makes no sense.</summary>
    public void Validate()
    {
        if (SampleRate <= 0) throw new ArgumentException($"sample rate must be positive, got {SampleRate}");
        if (NFft < 2) throw new ArgumentException($"n_fft must be at least 2, got {NFft}");
        if (Window < 1 || Window > NFft) throw new ArgumentException($"win_length must be within 1..n_fft ({NFft}), got {Window}");
        if (HopLength < 1) throw new ArgumentException($"hop must be positive, got {HopLength}");
        if (NMels < 1) throw new ArgumentException($"n_mels must be positive, got {NMels}");
        double fMax = FMax ?? SampleRate / 2.0;
        if (FMin < 0 || fMax <= FMin || fMax > SampleRate / 2.0)
            throw new ArgumentException($"need 0 <= f_min < f_max <= sample_rate/2; got f_min {FMin}, f_max {fMax}");
        if (Kind == AudioFeatureKind.Mfcc && (NMfcc < 1 || NMfcc > NMels))
            throw new ArgumentException($"n_mfcc must be within 1..n_mels ({NMels}), got {NMfcc}");
        if (TopDb is { } t && !(t >= 0)) throw new ArgumentException($"top_db must be non-negative, got {t}");
    }
}
