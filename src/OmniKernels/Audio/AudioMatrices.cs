namespace OmniKernels.Audio;

/// <summary>
/// The constant matrices of the front end, built on the host in double: the windowed DFT basis,
/// the mel filterbank and the DCT. Definitions follow torchaudio 0.13
/// (<c>torchaudio.functional.melscale_fbanks</c>, <c>create_dct</c>, <c>torch.hann_window</c>).
/// </summary>
internal static class AudioMatrices
{
    /// <summary>Imaginary columns a real DFT of length m stores: bins 1 … I (bin 0's is zero, and so is the Nyquist bin's for even m).</summary>
    public static int ImaginaryBins(int m) => m % 2 == 0 ? m / 2 - 1 : m / 2;

    /// <summary>Sub-sequences the STFT splits a frame into: 4 when n_fft allows, else 2, else 1.</summary>
    public static int Decimation(int nFft) => nFft % 4 == 0 && nFft >= 16 ? 4 : nFft % 2 == 0 ? 2 : 1;

    /// <summary>
    /// [R, M, C] row-major, M = n_fft/R, C = M/2 + 1 + I: for sub-sequence r (samples R·m + r), column j
    /// is w[R·m + r]·cos(2πjm/M) and column M/2 + j (j = 1 … I) is −w[R·m + r]·sin(2πjm/M), with w the
    /// periodic Hann window of win_length centred in n_fft.
    /// </summary>
    public static float[] SubBases(int nFft, int winLength, int r)
    {
        int m = nFft / r, half = m / 2 + 1, imag = ImaginaryBins(m), cols = half + imag, left = (nFft - winLength) / 2;
        var bases = new float[r * m * cols];
        for (int q = 0; q < r; q++)
            for (int i = 0; i < m; i++)
            {
                int wi = r * i + q - left;
                double w = wi >= 0 && wi < winLength ? 0.5 - 0.5 * Math.Cos(2 * Math.PI * wi / winLength) : 0;
                int row = (q * m + i) * cols;
                for (int j = 0; j < half; j++)
                {
                    // (j·i) mod M keeps the angle small, so cos and sin stay exact.
                    double angle = 2 * Math.PI * ((long)j * i % m) / m;
                    bases[row + j] = (float)(w * Math.Cos(angle));
                    if (j >= 1 && j <= imag) bases[row + half + j - 1] = (float)(-w * Math.Sin(angle));
                }
            }
        return bases;
    }

    /// <summary>
    /// [3, F]: per output bin k, the stored column of Re Y[k mod M], that of Im Y[k mod M], and the sign
    /// of the imaginary part: −1 in the mirrored half (Y[M − j] = conj Y[j]), 0 where it is zero.
    /// </summary>
    public static int[] CombineSources(int nFft, int r)
    {
        int bins = nFft / 2 + 1, m = nFft / r, half = m / 2, imag = ImaginaryBins(m);
        var source = new int[bins * 3];
        for (int k = 0; k < bins; k++)
        {
            int j = k % m, jj = j > half ? m - j : j;
            bool hasImag = jj >= 1 && jj <= imag;
            source[k] = jj;
            source[bins + k] = hasImag ? half + jj : 0;
            source[2 * bins + k] = hasImag ? (j > half ? -1 : 1) : 0;
        }
        return source;
    }

    /// <summary>[R, 2, F]: (cos, −sin)(2π·r·k/n_fft), the twiddles of the radix-R combine.</summary>
    public static float[] Twiddles(int nFft, int r)
    {
        int bins = nFft / 2 + 1;
        var t = new float[bins * r * 2];
        for (int k = 0; k < bins; k++)
            for (int q = 0; q < r; q++)
            {
                double angle = 2 * Math.PI * ((long)q * k % nFft) / nFft;
                t[2 * q * bins + k] = (float)Math.Cos(angle);
                t[(2 * q + 1) * bins + k] = (float)-Math.Sin(angle);
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
