namespace OmniKernels.Audio;

/// <summary>
/// The constant matrices of the front end, built on the host in double: the windowed DFT basis,
/// the mel filterbank and the DCT. Definitions follow torchaudio 0.13
/// (<c>torchaudio.functional.melscale_fbanks</c>, <c>create_dct</c>, <c>torch.hann_window</c>).
/// </summary>
internal static class AudioMatrices
{
    /// <summary>Imaginary columns the basis stores: bins 1 … I (bin 0's sine is zero, and so is the Nyquist bin's for even n_fft).</summary>
    public static int ImaginaryBins(int nFft) => nFft % 2 == 0 ? nFft / 2 - 1 : nFft / 2;

    /// <summary>
    /// [n_fft, F + I] row-major, F = n_fft/2 + 1: column f is w[n]·cos(2πfn/n_fft), column F + f − 1
    /// (f = 1 … I) is −w[n]·sin(2πfn/n_fft), with w the periodic Hann window of win_length centred in n_fft.
    /// </summary>
    public static float[] DftBasis(int nFft, int winLength)
    {
        int bins = nFft / 2 + 1, imag = ImaginaryBins(nFft), cols = bins + imag, left = (nFft - winLength) / 2;
        var basis = new float[nFft * cols];
        for (int n = 0; n < nFft; n++)
        {
            int wi = n - left;
            double w = wi >= 0 && wi < winLength ? 0.5 - 0.5 * Math.Cos(2 * Math.PI * wi / winLength) : 0;
            for (int f = 0; f < bins; f++)
            {
                // (f·n) mod n_fft keeps the angle small, so cos and sin stay exact for large indices.
                double angle = 2 * Math.PI * ((long)f * n % nFft) / nFft;
                basis[n * cols + f] = (float)(w * Math.Cos(angle));
                if (f >= 1 && f <= imag) basis[n * cols + bins + f - 1] = (float)(-w * Math.Sin(angle));
            }
        }
        return basis;
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
