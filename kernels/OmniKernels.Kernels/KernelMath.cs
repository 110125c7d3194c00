using ILGPU;
using ILGPU.Frontend;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>A fused multiply-add as a struct operation, chosen once per accelerator.</summary>
public interface IMulAdd
{
    /// <summary>a·b + c.</summary>
    float Apply(float a, float b, float c);
}

/// <summary>
/// OpenCL's <c>fma</c>: ILGPU never emits FMA and PoCL keeps its multiply and add apart;
/// this external maps to OpenCL C's <c>fma</c>, which LLVM turns into <c>vfmadd</c>.
/// </summary>
public readonly struct OpenCLFma : IMulAdd, IOpenCLOnly
{
    /// <inheritdoc/>
    public float Apply(float a, float b, float c) => KernelMath.Fma(a, b, c);
}

/// <summary>Multiply then add; ptxas contracts the pair into an FMA on CUDA, the emulator runs it as written.</summary>
public readonly struct PlainMulAdd : IMulAdd
{
    /// <inheritdoc/>
    public float Apply(float a, float b, float c) => a * b + c;
}

/// <summary>Scalar device math shared by kernel families.</summary>
public static class KernelMath
{
    /// <summary>Maps to OpenCL C's <c>fma</c> in generated OpenCL code; plain arithmetic elsewhere.</summary>
    [External("fma")]
    public static float Fma(float a, float b, float c) => a * b + c;

    /// <summary>
    /// Complementary error function, fractional error below 1.2e-7 everywhere (the Chebyshev fit of
    /// Numerical Recipes' erfcc). erfc rather than erf keeps GELU's tiny negative tail accurate.
    /// </summary>
    public static float Erfc(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float poly = -z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
                     t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
                     t * (-0.82215223f + t * 0.17087277f))))))));
        float r = t * MathF.Exp(poly);
        return x >= 0f ? r : 2f - r;
    }

    /// <summary>1 / (1 + e^-x), saturating to 0 and 1 without NaN.</summary>
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>True where <c>fma</c> may be emitted as an OpenCL external.</summary>
    public static bool UsesOpenCLFma(Accelerator accelerator) => accelerator.AcceleratorType == AcceleratorType.OpenCL;
}

/// <summary>
/// 2^x for x ≤ 0 by range reduction and a degree-7 Taylor polynomial on [−½, ½] (relative error
/// ≈ 5e-9). Branch-free so that LLVM's SLP vectorizer packs sixteen lanes: the clamp is fmax,
/// rounding adds and subtracts 1.5·2²³, and the exponent comes from that sum's low bits by
/// integer shifts. PoCL compiles OpenCL's exp2 to scalar calls.
/// </summary>
public readonly struct Exp2 : IActivation
{
    private const float RoundingShift = 12582912f;
    private const uint RoundingBits = 0x4B400000u;

    /// <inheritdoc/>
    public float Apply(float x)
    {
        x = MathF.Max(x, -126f);
        float shifted = x + RoundingShift;
        float n = shifted - RoundingShift;
        float f = (x - n) * 0.69314718055994531f;
        float p = 1f + f * (1f + f * (0.5f + f * (1f / 6f + f * (1f / 24f + f * (1f / 120f + f * (1f / 720f + f * (1f / 5040f)))))));
        return p * Interop.IntAsFloat((Interop.FloatAsInt(shifted) - RoundingBits + 127u) << 23);
    }
}

/// <summary>
/// 2^x from the device's own exp2: <c>ex2.approx.f32</c> on CUDA (about 2 ulp, one instruction,
/// through ILGPU.Algorithms' XMath), OpenCL's <c>exp2</c> on OpenCL. For the GPU-shaped schedules;
/// the CPU ones use <see cref="Exp2"/>, which PoCL vectorizes.
/// </summary>
public readonly struct HardwareExp2 : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => ILGPU.Algorithms.XMath.Exp2(x);
}

/// <summary>
/// Natural logarithm of a positive normal float, branch-free so that it vectorizes (PoCL compiles
/// OpenCL's log to scalar calls): x = m·2^e with m in [√½, √2) from the bits, then
/// ln m = 2·atanh(s), s = (m − 1)/(m + 1), by its odd series to s⁹ (|s| ≤ 0.172: error ≈ 1e-9).
/// </summary>
public readonly struct NaturalLog : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        float e = (float)(int)((bits >> 23) & 0xFFu) - 127f;
        float m = Interop.IntAsFloat((bits & 0x7FFFFFu) | 0x3F800000u);
        // m in [1, 2): fold [√2, 2) down to [√½, 1) without a branch.
        float fold = MathF.Floor(m * 0.70710678118654752f);
        m *= 1f - 0.5f * fold;
        e += fold;
        float s = (m - 1f) / (m + 1f), s2 = s * s;
        float series = s * (2f + s2 * (2f / 3f + s2 * (2f / 5f + s2 * (2f / 7f + s2 * (2f / 9f)))));
        return e * 0.69314718055994531f + series;
    }
}
