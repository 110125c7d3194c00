using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;

namespace OmniKernels.Images;

/// <summary>
/// The one ImageSharp <see cref="Configuration"/> this runtime decodes with, built for hostile input
/// (docs/security.md): only the PNG, JPEG, GIF and WebP modules, so that the TIFF and BMP decoders of 2.1.13
/// and their open advisories cannot be reached; an allocator whose single-buffer limit is
/// <see cref="ImageLimits.AllocationLimitMegabytes"/>; GIF reduced to its first frame for still images.
/// </summary>
/// <remarks>
/// Built with <c>new Configuration(modules)</c>, not <c>Configuration.Default.Clone()</c>: a clone shares the
/// default's format manager, so a format registered on the default anywhere in the process would be decodable
/// here too. Thread-safe: decoders hold no per-call state.
/// </remarks>
internal static class ImageSharpSetup
{
    /// <summary>The configuration for still images.</summary>
    public static Configuration Configuration { get; } = Create();

    /// <summary>A GIF decoder that keeps at most <paramref name="maxFrames"/> frames (for animations).</summary>
    public static GifDecoder AnimationDecoder(int maxFrames) => new() { DecodingMode = FrameDecodingMode.All, MaxFrames = (uint)maxFrames };

    private static Configuration Create()
    {
        var c = new Configuration(new PngConfigurationModule(), new JpegConfigurationModule(), new GifConfigurationModule(), new WebpConfigurationModule())
        {
            MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions
            {
                AllocationLimitMegabytes = ImageLimits.AllocationLimitMegabytes,
                MaximumPoolSizeMegabytes = ImageLimits.PoolMegabytes,
            }),
            // Pixel rows are copied out as one span; ImageSharp falls back to discontiguous buffers itself when
            // a contiguous one is not available.
            PreferContiguousImageBuffers = true,
        };
        c.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
        return c;
    }
}
