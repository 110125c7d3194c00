namespace OmniKernels.Audio;

/// <summary>
/// The constant matrices of the front end, built on the host in double: the windowed DFT basis,
/// the mel filterbank and the DCT. Definitions follow torchaudio 0.13
/// (<c>torchaudio.functional.melscale_fbanks</c>, <c>create_dct</c>, <c>torch.hann_window</c>).
/// </summary>
internal static class AudioMatrices
{
    /// <summary>Sub-sequences the STFT splits a frame into: 4 when n_fft allows, else 2, else 1.</summary>
    public static int Decimation(int nFft) => nFft % 4 == 0 && nFft >= 16 ? 4 : nFft % 2 == 0 ? 2 : 1;

    /// <summary>
    /// [R, M, C] row-major, M = n_fft/R, H = M/2, C = 2(H + 1): for sub-sequence r (samples R·m + r), column j
    /// is w[R·m + r]·cos(2πjm/M) and column H + 1 + j is −w[R·m + r]·sin(2πjm/M) (j = 0 … H; the sine columns
    /// of bin 0 and, for even M, of bin M/2 are zero and kept so the combine reads every bin at one offset),
    /// with w the periodic Hann window of win_length centred in n_fft.
    /// </summary>
    public static float[] SubBases(int nFft, int winLength, int r)
    {
        int m = nFft / r, half = m / 2, cols = SubColumns(nFft, r), left = (nFft - winLength) / 2;
        var bases = new float[r * m * cols];
        for (int q = 0; q < r; q++)
            for (int i = 0; i < m; i++)
            {
                int wi = r * i + q - left;
                double w = wi >= 0 && wi < winLength ? 0.5 - 0.5 * Math.Cos(2 * Math.PI * wi / winLength) : 0;
                int row = (q * m + i) * cols;
                for (int j = 0; j <= half; j++)
                {
                    // (j·i) mod M keeps the angle small, so cos and sin stay exact.
                    long turn = (long)j * i % m;
                    double angle = 2 * Math.PI * turn / m;
                    bases[row + j] = (float)(w * Math.Cos(angle));
                    // sin is exactly zero at the half turn, where Math.Sin(π) is not
                    bases[row + half + 1 + j] = turn == 0 || 2 * turn == m ? 0f : (float)(-w * Math.Sin(angle));
                }
            }
        return bases;
    }

    /// <summary>Columns of each sub-spectrum: Re and Im of bins 0 … M/2.</summary>
    public static int SubColumns(int nFft, int r) => 2 * (nFft / r / 2 + 1);

    /// <summary>[R, 2, H + 1]: (cos, −sin)(2π·r·j/n_fft) for j = 0 … H = M/2, the twiddles of the radix-R combine.</summary>
    public static float[] Twiddles(int nFft, int r)
    {
        int n = nFft / r / 2 + 1;
        var t = new float[r * 2 * n];
        for (int q = 0; q < r; q++)
            for (int j = 0; j < n; j++)
            {
                double angle = 2 * Math.PI * ((long)q * j % nFft) / nFft;
                t[2 * q * n + j] = (float)Math.Cos(angle);
                t[(2 * q + 1) * n + j] = (float)-Math.Sin(angle);
            }
        return t;
    }

    /// <summary>[2, R]: (cos, −sin)(2π·p/R), the R-th roots of unity of the combine's butterfly, exact for R ∈ {1, 2, 4}.</summary>
    public static float[] Roots(int r)
    {
        if (4 % r != 0) throw new ArgumentOutOfRangeException(nameof(r), r, "the decimation is 1, 2 or 4");
        var t = new float[2 * r];
        for (int p = 0; p < r; p++)
        {
            int quarter = 4 * p / r; // 1, −i, −1, i
            t[p] = quarter == 0 ? 1f : quarter == 2 ? -1f : 0f;
            t[r + p] = quarter == 1 ? -1f : quarter == 3 ? 1f : 0f;
        }
        return t;
    }

    /// <summary>[F, n_mels] row-major triangular filters, as torchaudio's <c>melscale_fbanks</c>.</summary>
    public static float[] MelFilterbank(int bins, double fMin, double fMax, int nMels, int sampleRate, MelScale scale, MelNorm norm)
    {
        // torchaudio spaces the FFT bins over [0, sample_rate // 2] with integer division.
        double top = sampleRate / 2;
        var freqs = new double[bins];
        for (int i = 0; i < bins; i++) freqs[i] = bins == 1 ? 0 : top * i / (bins - 1);
        double mMin = HzToMel(fMin, scale), mMax = HzToMel(fMax, scale);
        var fPts = new double[nMels + 2];
        for (int i = 0; i < fPts.Length; i++) fPts[i] = MelToHz(mMin + (mMax - mMin) * i / (nMels + 1), scale);
        var fb = new float[bins * nMels];
        for (int m = 0; m < nMels; m++)
        {
            double lo = fPts[m], mid = fPts[m + 1], hi = fPts[m + 2];
            double enorm = norm == MelNorm.Slaney ? 2.0 / (hi - lo) : 1.0;
            for (int i = 0; i < bins; i++)
            {
                double down = (freqs[i] - lo) / (mid - lo), up = (hi - freqs[i]) / (hi - mid);
                fb[i * nMels + m] = (float)(Math.Max(0, Math.Min(down, up)) * enorm);
            }
        }
        return fb;
    }

    /// <summary>[n_mels, n_mfcc] row-major DCT-II with ortho normalization, as torchaudio's <c>create_dct</c>.</summary>
    public static float[] Dct(int nMfcc, int nMels)
    {
        var dct = new float[nMels * nMfcc];
        for (int n = 0; n < nMels; n++)
            for (int k = 0; k < nMfcc; k++)
            {
                double v = Math.Cos(Math.PI / nMels * (n + 0.5) * k) * Math.Sqrt(2.0 / nMels);
                dct[n * nMfcc + k] = (float)(k == 0 ? v / Math.Sqrt(2) : v);
            }
        return dct;
    }

    private const double SlaneyStep = 200.0 / 3, SlaneyBreakHz = 1000, SlaneyBreakMel = 15;
    private static readonly double SlaneyLogStep = Math.Log(6.4) / 27;

    public static double HzToMel(double hz, MelScale scale) => scale == MelScale.Htk
        ? 2595 * Math.Log10(1 + hz / 700)
        : hz >= SlaneyBreakHz ? SlaneyBreakMel + Math.Log(hz / SlaneyBreakHz) / SlaneyLogStep : hz / SlaneyStep;

    public static double MelToHz(double mel, MelScale scale) => scale == MelScale.Htk
        ? 700 * (Math.Pow(10, mel / 2595) - 1)
        : mel >= SlaneyBreakMel ? SlaneyBreakHz * Math.Exp(SlaneyLogStep * (mel - SlaneyBreakMel)) : SlaneyStep * mel;
}
