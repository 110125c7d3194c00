using System.Numerics;
using System.Runtime.InteropServices;

namespace OmniKernels.Audio;

/// <summary>
/// Band-limited (windowed-sinc) sample-rate conversion of mono audio, computing the same function as
/// <c>torchaudio.functional.resample(waveform, orig_freq, new_freq)</c> in torchaudio 0.13 with its defaults:
/// the Hann-windowed sinc ("sinc_interpolation", later renamed "sinc_interp_hann"), a lowpass filter width
/// of 6 zero crossings and a rolloff of 0.99.
/// </summary>
/// <remarks>
/// The structure follows torchaudio's <c>resample</c>, <c>_get_sinc_resample_kernel</c> and
/// <c>_apply_sinc_resample_kernel</c>: both rates are divided by their greatest common divisor, giving
/// <c>orig</c> and <c>new</c>; a bank of <c>new</c> filters (one per output phase), each <c>2 * width + orig</c>
/// taps long, is built in double; the input is zero-padded by <c>width</c> samples on the left and
/// <c>width + orig</c> on the right; and output sample <c>n * new + j</c> is filter <c>j</c> applied at input
/// offset <c>n * orig</c> (a conv1d with stride <c>orig</c>). The output is cut to
/// <c>ceil(new * length / orig)</c> samples. Everything is computed in double and rounded to float at the end.
/// </remarks>
public static class Resampler
{
    // torchaudio's defaults for resample (lowpass_filter_width, rolloff).
    private const int LowpassFilterWidth = 6;
    private const double Rolloff = 0.99;

    /// <summary>Resamples mono audio; returns the input copy when the rates are equal.</summary>
    /// <param name="input">The samples at <paramref name="fromRate"/>.</param>
    /// <param name="fromRate">The input sample rate in Hz.</param>
    /// <param name="toRate">The output sample rate in Hz.</param>
    /// <returns>
    /// <c>ceil(toRate * input.Length / fromRate)</c> samples (with the rates reduced by their gcd) at
    /// <paramref name="toRate"/>.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fromRate"/> or <paramref name="toRate"/> is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is empty, or the output would be longer than an array can be.</exception>
    public static float[] Resample(ReadOnlySpan<float> input, int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(toRate);
        if (input.IsEmpty)
            throw new ArgumentException("the input holds no samples", nameof(input));
        // resample: equal rates return the waveform unchanged.
        if (fromRate == toRate)
            return input.ToArray();

        int gcd = Gcd(fromRate, toRate);
        int orig = fromRate / gcd;
        int @new = toRate / gcd;
        int length = input.Length;

        // _apply_sinc_resample_kernel: target_length = ceil(new * length / orig), done here in exact integers.
        long targetLength = ((long)@new * length + orig - 1) / orig;
        if (targetLength > Array.MaxLength)
            throw new ArgumentException(
                $"resampling {length} samples from {fromRate} Hz to {toRate} Hz gives {targetLength} samples, too many for an array",
                nameof(input));
        int outLength = (int)targetLength;

        // Only the phases the output reaches are built (a short input may need fewer than new of them).
        int phases = (int)Math.Min(@new, targetLength);
        var bank = Phase.Build(orig, @new, phases, out int width);

        var x = new double[length];
        for (int i = 0; i < length; i++) x[i] = input[i];

        var output = new float[outLength];
        for (int i = 0; i < outLength; i++)
        {
            long frame = i / @new;
            Phase phase = bank[i % @new];
            // Tap k of the phase's filter meets padded sample frame * orig + k, i.e. input sample
            // frame * orig + k - width.
            long start = frame * orig + phase.First - width;
            output[i] = (float)Apply(x, start, phase.Taps);
        }
        return output;
    }

    /// <summary>The dot product of <paramref name="taps"/> with <paramref name="x"/> from <paramref name="start"/>, with zeros outside <paramref name="x"/>.</summary>
    private static double Apply(double[] x, long start, double[] taps)
    {
        long end = start + taps.Length;
        if (start >= 0 && end <= x.Length)
            return Dot(x.AsSpan((int)start, taps.Length), taps);
        // Near the ends: the zero padding of _apply_sinc_resample_kernel contributes nothing.
        long lo = Math.Max(start, 0), hi = Math.Min(end, x.Length);
        if (lo >= hi) return 0.0;
        return Dot(x.AsSpan((int)lo, (int)(hi - lo)), taps.AsSpan((int)(lo - start), (int)(hi - lo)));
    }

    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = a.Length, i = 0;
        double sum = 0.0;
        if (Vector.IsHardwareAccelerated && n >= Vector<double>.Count)
        {
            var va = MemoryMarshal.Cast<double, Vector<double>>(a);
            var vb = MemoryMarshal.Cast<double, Vector<double>>(b);
            var acc = Vector<double>.Zero;
            for (int v = 0; v < va.Length; v++) acc += va[v] * vb[v];
            sum = Vector.Sum(acc);
            i = va.Length * Vector<double>.Count;
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    /// <summary>One output phase's filter: the taps of torchaudio's kernel row that are not negligible.</summary>
    /// <param name="First">The index, within the full row of <c>2 * width + orig</c> taps, of <see cref="Taps"/>[0].</param>
    /// <param name="Taps">The filter taps, in input order.</param>
    private readonly record struct Phase(int First, double[] Taps)
    {
        /// <summary>
        /// The filter bank of <c>_get_sinc_resample_kernel</c> (in float64) for reduced rates
        /// <paramref name="orig"/> and <paramref name="new"/>, its first <paramref name="phases"/> rows.
        /// </summary>
        /// <remarks>
        /// Row j, tap k (0 ≤ k &lt; 2 * width + orig) is evaluated at
        /// <c>t = (-j / new + (k - width) / orig) * base_freq</c> with <c>base_freq = min(orig, new) * rolloff</c>,
        /// clamped to ±lowpass_filter_width, as <c>sinc(pi t) * cos²(pi t / (2 * lowpass_filter_width)) * base_freq / orig</c>,
        /// in the same order of operations as torchaudio. Taps whose t was clamped all carry the same weight,
        /// about 1e-49 of the peak (sin(6 pi) / (6 pi) times cos²(pi / 2)), which no double sum of audio can
        /// resolve; they are left out, so each row keeps only the ~2 * lowpass_filter_width * orig / base_freq
        /// taps around its centre instead of all 2 * width + orig (which would be quadratic in the rates).
        /// </remarks>
        public static Phase[] Build(int orig, int @new, int phases, out int width)
        {
            double baseFreq = Math.Min(orig, @new) * Rolloff;
            // width = ceil(lowpass_filter_width * orig / base_freq)
            width = (int)Math.Ceiling(LowpassFilterWidth * (long)orig / baseFreq);
            int rowLength = 2 * width + orig;
            double scale = baseFreq / orig;
            // Half the span of unclamped taps, in taps.
            double half = LowpassFilterWidth * (double)orig / baseFreq;

            var bank = new Phase[phases];
            for (int j = 0; j < phases; j++)
            {
                // Row j is centred (t = 0) on tap width + j * orig / new; beyond half a span either side t is
                // clamped. One tap of margin each way keeps rounding from dropping an unclamped tap.
                double centre = width + (double)j * orig / @new;
                int first = Math.Max(0, (int)Math.Floor(centre - half) - 1);
                int last = Math.Min(rowLength - 1, (int)Math.Ceiling(centre + half) + 1);
                var taps = new double[last - first + 1];
                double shift = -(double)j / @new;
                for (int k = first; k <= last; k++)
                {
                    double t = shift + (double)(k - width) / orig;
                    t *= baseFreq;
                    t = Math.Clamp(t, -LowpassFilterWidth, LowpassFilterWidth);
                    double c = Math.Cos(t * Math.PI / LowpassFilterWidth / 2);
                    double window = c * c;
                    t *= Math.PI;
                    double sinc = t == 0.0 ? 1.0 : Math.Sin(t) / t;
                    taps[k - first] = sinc * (window * scale);
                }
                bank[j] = new Phase(first, taps);
            }
            return bank;
        }
    }
}
