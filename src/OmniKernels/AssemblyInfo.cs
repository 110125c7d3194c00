using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("OmniKernels.Tests")]
