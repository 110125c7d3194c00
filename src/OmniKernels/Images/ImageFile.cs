using OmniKernels.IO;

namespace OmniKernels.Images;

/// <summary>Reads an image file into 8-bit pixels with the channel count the caller asks for.</summary>
public static class ImageFile
{
    /// <summary>
    /// Reads and decodes the image at <paramref name="path"/> (with <paramref name="decoder"/>, by default
    /// <see cref="ImageSharpDecoder"/>) and converts it to <paramref name="channels"/> channels as Pillow's
    /// <c>Image.convert</c> does: 1 = "L", 3 = "RGB", 4 = "RGBA" (see <see cref="ConvertChannels"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="channels"/> is not 1, 3 or 4.</exception>
    /// <exception cref="ImageFormatException">
    /// The file is missing, unreadable, empty, truncated, corrupt, over <see cref="ImageLimits"/>, or in an
    /// unsupported format; the one-line message names the file.
    /// </exception>
    public static DecodedImage Read(string path, int channels, IImageDecoder? decoder = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (channels is not (1 or 3 or 4))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (gray), 3 (RGB) or 4 (RGBA)");
        var d = decoder ?? ImageSharpDecoder.Instance;
        var image = InputFile.Read(path, stream => d.Decode(stream, path), message => new ImageFormatException(message));
        return ConvertChannels(image, channels);
    }

    /// <summary>
    /// Reads every frame of the animated GIF at <paramref name="path"/> (one frame for any other image) and
    /// converts each to <paramref name="channels"/> as <see cref="Read"/> does; limits in <see cref="ImageLimits"/>.
    /// </summary>
    /// <exception cref="ImageFormatException">As <see cref="Read"/>, or the GIF has more frames than the limits allow.</exception>
    public static IReadOnlyList<DecodedImage> ReadFrames(string path, int channels)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (channels is not (1 or 3 or 4))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (gray), 3 (RGB) or 4 (RGBA)");
        var frames = InputFile.Read(path, stream => ImageSharpDecoder.Instance.DecodeFrames(stream, path), message => new ImageFormatException(message));
        return frames.Select(f => ConvertChannels(f, channels)).ToArray();
    }

    /// <summary>
    /// Converts gray (1), gray + alpha (2), RGB (3) or RGBA (4) pixels to <paramref name="channels"/> (1, 2, 3 or 4)
    /// with Pillow's rules: gray is replicated into R, G and B; alpha, when absent, is added as 255; RGB becomes
    /// gray by ITU-R 601-2 luma in Pillow's fixed point, L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
    /// Alpha that the result drops is first composited on opaque white, as transformers' <c>convert_to_rgb</c>
    /// does (Pillow's <c>Image.alpha_composite</c> on a white background, in its integer arithmetic), so that a
    /// transparent background reads as white rather than as whatever colour its pixels hold. Returns
    /// <paramref name="image"/> itself when it already has that many channels.
    /// </summary>
    public static DecodedImage ConvertChannels(DecodedImage image, int channels)
    {
        ArgumentNullException.ThrowIfNull(image);
        image.Validate();
        if (channels is < 1 or > 4)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 to 4");
        int from = image.Channels;
        if (from == channels) return image;
        long n = (long)image.Width * image.Height;
        var src = image.Pixels;
        var dst = new byte[n * channels];
        for (long i = 0, s = 0, o = 0; i < n; i++, s += from, o += channels)
        {
            byte r, g, b, a = 255;
            if (from <= 2)
            {
                r = g = b = src[s];
                if (from == 2) a = src[s + 1];
            }
            else
            {
                r = src[s];
                g = src[s + 1];
                b = src[s + 2];
                if (from == 4) a = src[s + 3];
            }
            if (channels is 1 or 3 && a != 255)
            {
                r = OverWhite(r, a);
                g = OverWhite(g, a);
                b = OverWhite(b, a);
                a = 255;
            }
            switch (channels)
            {
                case 1:
                    dst[o] = from <= 2 ? r : Luma(r, g, b);
                    break;
                case 2:
                    dst[o] = from <= 2 ? r : Luma(r, g, b);
                    dst[o + 1] = a;
                    break;
                default:
                    dst[o] = r;
                    dst[o + 1] = g;
                    dst[o + 2] = b;
                    if (channels == 4) dst[o + 3] = a;
                    break;
            }
        }
        return new DecodedImage(dst, image.Width, image.Height, channels);
    }

    /// <summary>
    /// Pillow's <c>ImagingAlphaComposite</c> (libImaging/AlphaComposite.c) with an opaque white destination: there
    /// the output alpha is 255, the source weight a·128 and the destination's (255 − a)·128 in 7 fraction bits,
    /// and the sum is divided by 255 with its rounded shift.
    /// </summary>
    private static byte OverWhite(byte c, byte a)
    {
        uint t = (uint)(c * a + 255 * (255 - a)) * 128 + (0x80u << 7);
        return (byte)((((t >> 8) + t) >> 8) >> 7);
    }

    private static byte Luma(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}
