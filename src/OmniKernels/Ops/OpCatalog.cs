namespace OmniKernels.Ops;

/// <summary>Every op by name: the one place an op is registered.</summary>
public static class OpCatalog
{
    /// <summary>All ops, in help order.</summary>
    public static IReadOnlyList<OpDefinition> All { get; } =
    [
        new MatMulOp(),
        new NormOp(layerNorm: true),
        new NormOp(layerNorm: false),
        new SoftmaxOp(),
        new ActivationOp("gelu", "y = x·Φ(x), exact GELU"),
        new ActivationOp("gelu_tanh", "y = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))"),
        new ActivationOp("quick_gelu", "y = x·σ(1.702x)"),
        new ActivationOp("silu", "y = x·σ(x)"),
        new ActivationOp("relu", "y = max(x, 0)"),
        new BinaryOp(add: true),
        new BinaryOp(add: false),
        new AttentionOp(),
        new PatchEmbedOp(),
        new QuantizeOp(),
        new MatMulInt8Op(),
        new GatedFusionOp(),
        new TopKOp(),
    ];

    /// <summary>The op called <paramref name="name"/>, or an error listing the known ones.</summary>
    public static OpDefinition Find(string name) =>
        All.FirstOrDefault(o => o.Name == name)
        ?? throw new OpInputException($"unknown op '{name}'; known ops: {string.Join(", ", All.Select(o => o.Name))}");
}
