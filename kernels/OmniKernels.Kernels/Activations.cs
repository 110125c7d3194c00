namespace OmniKernels.Kernels;

/// <summary>Pointwise activations the elementwise kernel and the GEMM epilogue apply.</summary>
public enum Activation
{
    /// <summary>y = x.</summary>
    None,
    /// <summary>Exact GELU: x·Φ(x) = ½x·erfc(−x/√2) (PyTorch <c>gelu</c>, approximate='none').</summary>
    Gelu,
    /// <summary>Tanh GELU: ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (approximate='tanh').</summary>
    GeluTanh,
    /// <summary>CLIP's quick_gelu: x·σ(1.702x).</summary>
    QuickGelu,
    /// <summary>SiLU / swish: x·σ(x).</summary>
    Silu,
    /// <summary>ReLU: max(x, 0).</summary>
    Relu,
}

/// <summary>An activation as a struct operation, specialized into each kernel at compile time.</summary>
public interface IActivation
{
    /// <summary>The activation of x.</summary>
    float Apply(float x);
}

/// <summary>Identity.</summary>
public readonly struct NoActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => x;
}

/// <summary>Exact GELU.</summary>
public readonly struct GeluActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => 0.5f * x * KernelMath.Erfc(-0.70710678118654752f * x);
}

/// <summary>Tanh-approximated GELU.</summary>
public readonly struct GeluTanhActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => 0.5f * x * (1f + MathF.Tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

/// <summary>x·σ(1.702x).</summary>
public readonly struct QuickGeluActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => x * KernelMath.Sigmoid(1.702f * x);
}

/// <summary>x·σ(x).</summary>
public readonly struct SiluActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => x * KernelMath.Sigmoid(x);
}

/// <summary>max(x, 0): PyTorch's <c>nn.ReLU</c> (the adaptive fusion's gate_net); NaN maps to 0.</summary>
public readonly struct ReluActivation : IActivation
{
    /// <inheritdoc/>
    public float Apply(float x) => x > 0f ? x : 0f;
}

/// <summary>Parses activation names used on the command line and in configs.</summary>
public static class Activations
{
    /// <summary>none, gelu, gelu_tanh, quick_gelu, silu or relu.</summary>
    public static Activation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" or "identity" => Activation.None,
        "gelu" => Activation.Gelu,
        "gelu_tanh" => Activation.GeluTanh,
        "quick_gelu" => Activation.QuickGelu,
        "silu" or "swish" => Activation.Silu,
        "relu" => Activation.Relu,
        _ => throw new ArgumentException($"unknown activation '{name}': use none, gelu, gelu_tanh, quick_gelu, silu or relu"),
    };
}
