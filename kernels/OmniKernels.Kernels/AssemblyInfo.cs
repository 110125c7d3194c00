using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator emits its kernels into a dynamic assembly of this name.
[assembly: InternalsVisibleTo("ILGPURuntime")]
[assembly: InternalsVisibleTo("OmniKernels.Tests")]
[assembly: InternalsVisibleTo("OmniKernels.Bench")]
