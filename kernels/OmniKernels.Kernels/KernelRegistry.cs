namespace OmniKernels.Kernels;

/// <summary>
/// Every kernel variant any launcher in this assembly can load, CPU- and GPU-shaped, from each
/// family's table. The offline PTX test compiles all of them; a test also checks that every kernel
/// method of the assembly appears here, so a new family cannot be missed.
/// </summary>
public static class KernelRegistry
{
    /// <summary>All entry points, grouped by family.</summary>
    public static IReadOnlyList<KernelEntry> All { get; } =
    [
        .. GemmKernel.EntryPoints,
        .. AttentionKernel.EntryPoints,
        .. Int8GemmKernel.EntryPoints,
        .. NormalizationKernel.EntryPoints,
        .. SoftmaxKernel.EntryPoints,
        .. ElementwiseKernel.EntryPoints,
        .. SpectrogramKernel.EntryPoints,
        .. ImagePreprocessKernel.EntryPoints,
        .. GatedFusionKernel.EntryPoints,
        .. PoolingKernel.EntryPoints,
        .. EmbeddingKernel.EntryPoints,
        .. TopKKernel.EntryPoints,
    ];
}
