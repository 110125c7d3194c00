using System.Buffers;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace OmniKernels.Images;

/// <summary>An image file (or stream) is missing, malformed, too large, or in a format this reader does not support.</summary>
public sealed class ImageFormatException : Exception
{
    /// <summary>Creates the exception with a one-line message that names the file and the problem.</summary>
    public ImageFormatException(string message) : base(message) { }
}

/// <summary>Decoded 8-bit pixels, interleaved row-major HWC: <c>Pixels[(y · Width + x) · Channels + c]</c>.</summary>
/// <param name="Pixels">Width · Height · Channels bytes.</param>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="Channels">1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA).</param>
public sealed record DecodedImage(byte[] Pixels, int Width, int Height, int Channels)
{
    /// <summary>Throws <see cref="ArgumentException"/> unless the sizes are positive and <see cref="Pixels"/> holds exactly the pixels.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Pixels);
        if (Width <= 0 || Height <= 0)
            throw new ArgumentException($"image size {Width}×{Height} must be positive");
        if (Channels is < 1 or > 4)
            throw new ArgumentException($"image has {Channels} channels; expected 1 to 4");
        if (Pixels.LongLength != (long)Width * Height * Channels)
            throw new ArgumentException($"image {Width}×{Height}×{Channels} needs {(long)Width * Height * Channels} bytes; Pixels has {Pixels.LongLength}");
    }
}

/// <summary>Decodes one encoded image into 8-bit pixels, keeping the file's own channel count.</summary>
public interface IImageDecoder
{
    /// <summary>
    /// Decodes the image that starts at the current position of <paramref name="stream"/>;
    /// <paramref name="nameForErrors"/> starts every error message.
    /// </summary>
    /// <exception cref="ImageFormatException">The content is empty, truncated, corrupt, too large or unsupported.</exception>
    DecodedImage Decode(Stream stream, string nameForErrors);
}

/// <summary>
/// Size limits checked against the header before any pixel memory is allocated, so that a file that claims
/// absurd dimensions fails fast; docs/security.md explains each.
/// </summary>
public static class ImageLimits
{
    /// <summary>Largest width or height accepted: 16384.</summary>
    public const int MaxDimension = 16384;

    /// <summary>
    /// Largest pixel buffer accepted, 256 MiB, counted as Width · Height · 4 bytes (the RGBA32 buffer decoding
    /// makes), i.e. at most 64 Mi pixels, e.g. 8192 × 8192 or 16384 × 4096.
    /// </summary>
    public const long MaxPixelBytes = 256L << 20;

    /// <summary>Largest encoded file accepted: 512 MiB.</summary>
    public const long MaxFileBytes = 512L << 20;

    /// <summary>Most frames read from an animated GIF: 1024.</summary>
    public const int MaxGifFrames = 1024;

    /// <summary>Largest total of decoded RGBA frames of one animation: 512 MiB (fewer frames are allowed when they are large).</summary>
    public const long MaxAnimationBytes = 512L << 20;

    /// <summary>
    /// ImageSharp's allocator refuses any single buffer over this many MiB (its own default is 4 GB): 320, the
    /// RGBA32 image at <see cref="MaxPixelBytes"/> with room for the decoders' working buffers.
    /// </summary>
    public const int AllocationLimitMegabytes = 320;

    /// <summary>Most memory, in MiB, ImageSharp's allocator keeps pooled between decodes: 64.</summary>
    public const int PoolMegabytes = 64;

    /// <summary>
    /// Throws <see cref="ImageFormatException"/> when <paramref name="width"/> × <paramref name="height"/> is empty or
    /// over the limits; the message starts with <paramref name="name"/> and names <paramref name="format"/> and
    /// which limit was passed.
    /// </summary>
    public static void Check(string name, string format, long width, long height)
    {
        if (width <= 0 || height <= 0)
            throw new ImageFormatException($"{name}: {format} header claims an empty image ({width}×{height})");
        if (width > MaxDimension || height > MaxDimension)
            throw new ImageFormatException(
                $"{name}: {format} header claims {width}×{height} pixels, over the limit of {MaxDimension} per side; the file is corrupt or too large");
        if (width * height * 4 > MaxPixelBytes)
            throw new ImageFormatException(
                $"{name}: {format} header claims {width}×{height} = {width * height} pixels, over the limit of {MaxPixelBytes / 4} pixels ({MaxPixelBytes >> 20} MiB as RGBA); a decompression bomb or too large an image");
    }
}

/// <summary>
/// Decodes PNG (1- to 16-bit, gray, RGB, palette, with or without alpha; 16-bit rounded to 8), JPEG (baseline,
/// progressive; gray, YCbCr, RGB, CMYK and YCCK), GIF and WebP (lossy and lossless) with SixLabors.ImageSharp
/// 2.1.13, in the hardened configuration of docs/security.md. The format and dimensions are read first
/// (<see cref="ImageHeader.Probe"/>, ImageSharp's Identify) and checked against <see cref="ImageLimits"/>
/// before any pixel is decoded; data that ends before the image's end marker is reported as truncated
/// (ImageSharp would otherwise decode the missing rows as zeros). EXIF orientation is applied (<c>AutoOrient</c>).
/// </summary>
/// <remarks>
/// Channels: 1 for gray PNG and JPEG, 2 for gray PNG with alpha, otherwise 3, or 4 where some pixel is not
/// opaque. Pixels equal Pillow's for 8-bit PNG, GIF and lossless WebP; JPEG and lossy WebP decoders may differ
/// by a few levels (ImageSharp's IDCT and chroma upsampling are not libjpeg-turbo's); 16-bit samples are
/// rounded (Pillow keeps the high byte: 1 level apart at most). Still images from an animated GIF are its
/// first frame; <see cref="DecodeFrames"/> reads all of them. Thread-safe.
/// </remarks>
public sealed class ImageSharpDecoder : IImageDecoder
{
    /// <summary>A shared instance (the decoder holds no state).</summary>
    public static ImageSharpDecoder Instance { get; } = new();

    /// <inheritdoc/>
    public DecodedImage Decode(Stream stream, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        var (data, header) = ReadAndProbe(stream, nameForErrors);
        using var image = Load(data, header, nameForErrors, null);
        return Pixels(image.Frames.RootFrame, Gray(image));
    }

    /// <summary>
    /// Every frame of an animated GIF (composited as the file's disposal methods say), or the one image of any
    /// other format, at most <see cref="ImageLimits.MaxGifFrames"/> frames and
    /// <see cref="ImageLimits.MaxAnimationBytes"/> of RGBA pixels.
    /// </summary>
    /// <exception cref="ImageFormatException">As <see cref="Decode"/>, or the GIF has more frames than the limits allow.</exception>
    public IReadOnlyList<DecodedImage> DecodeFrames(Stream stream, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        string name = nameForErrors;
        var (data, header) = ReadAndProbe(stream, name);
        if (header.Format != "GIF")
        {
            using var still = Load(data, header, name, null);
            return [Pixels(still.Frames.RootFrame, Gray(still))];
        }
        long frameBytes = header.Width * header.Height * 4;
        int max = (int)Math.Min(ImageLimits.MaxGifFrames, Math.Max(1, ImageLimits.MaxAnimationBytes / frameBytes));
        // One frame past the limit is decoded so that a longer animation is refused rather than cut short.
        using var image = Load(data, header, name, ImageSharpSetup.AnimationDecoder(max + 1));
        if (image.Frames.Count > max)
            throw new ImageFormatException(
                $"{name}: GIF has more than {max} frames of {header.Width}×{header.Height}, over the limit of {ImageLimits.MaxGifFrames} frames and {ImageLimits.MaxAnimationBytes >> 20} MiB of RGBA frames");
        var frames = new DecodedImage[image.Frames.Count];
        for (int i = 0; i < frames.Length; i++) frames[i] = Pixels(image.Frames[i], gray: false);
        return frames;
    }

    private static (byte[] Data, ImageHeader Header) ReadAndProbe(Stream stream, string name)
    {
        byte[] data = ReadAll(stream, name);
        var header = ImageHeader.Probe(data, name);
        ImageLimits.Check(name, header.Format, header.Width, header.Height);
        return (data, header);
    }

    /// <summary>Decodes to RGBA32 with <paramref name="decoder"/> (null: the configuration's) and applies EXIF orientation.</summary>
    private static Image<Rgba32> Load(byte[] data, ImageHeader header, string name, SixLabors.ImageSharp.Formats.IImageDecoder? decoder)
    {
        using var source = new MemoryStream(data, writable: false);
        Image<Rgba32> image;
        try
        {
            image = decoder is null
                ? Image.Load<Rgba32>(ImageSharpSetup.Configuration, source)
                : Image.Load<Rgba32>(ImageSharpSetup.Configuration, source, decoder);
        }
        catch (InvalidMemoryOperationException)
        {
            throw new ImageFormatException(
                $"{name}: {header.Format} of {header.Width}×{header.Height} needs a buffer over the decoder's {ImageLimits.AllocationLimitMegabytes} MiB allocation limit");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new ImageFormatException($"{name}: corrupt {header.Format}: {Reason(ex)}");
        }
        try
        {
            if (image.Width != header.Width || image.Height != header.Height)
                throw new ImageFormatException(
                    $"{name}: corrupt {header.Format}: the header says {header.Width}×{header.Height} but {image.Width}×{image.Height} decoded");
            image.Mutate(x => x.AutoOrient());
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Whether the file stores gray samples (PNG gray, JPEG luminance), so that one channel holds them all; the
    /// metadata of a format the image is not in has no colour type.
    /// </summary>
    private static bool Gray(Image image)
    {
        var png = image.Metadata.GetPngMetadata();
        if (png.ColorType is PngColorType.Grayscale or PngColorType.GrayscaleWithAlpha)
            return true;
        return image.Metadata.GetJpegMetadata().ColorType == JpegColorType.Luminance;
    }

    /// <summary>The frame's pixels with 1 or 2 channels when <paramref name="gray"/>, else 3 or 4; alpha only where some pixel is not opaque.</summary>
    private static DecodedImage Pixels(ImageFrame<Rgba32> frame, bool gray)
    {
        int w = frame.Width, h = frame.Height;
        bool alpha = false;
        frame.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < h && !alpha; y++)
                foreach (var p in rows.GetRowSpan(y))
                    if (p.A != 255)
                    {
                        alpha = true;
                        break;
                    }
        });
        int channels = (gray ? 1 : 3) + (alpha ? 1 : 0);
        var pixels = new byte[(long)w * h * channels];
        frame.ProcessPixelRows(rows =>
        {
            long o = 0;
            for (int y = 0; y < h; y++)
                foreach (var p in rows.GetRowSpan(y))
                {
                    if (gray)
                    {
                        pixels[o++] = p.R;
                    }
                    else
                    {
                        pixels[o++] = p.R;
                        pixels[o++] = p.G;
                        pixels[o++] = p.B;
                    }
                    if (alpha) pixels[o++] = p.A;
                }
        });
        return new DecodedImage(pixels, w, h, channels);
    }

    /// <summary>The decoder's failure reason, one printable line, or the exception type.</summary>
    internal static string Reason(Exception ex)
    {
        string message = ex.Message.Trim('\0', ' ').ReplaceLineEndings(" ");
        bool printable = message.Length > 0 && message.All(c => c >= ' ' && c != '\x7f');
        return printable ? message : $"the decoder failed ({ex.GetType().Name})";
    }

    /// <summary>The rest of the stream, at most <see cref="ImageLimits.MaxFileBytes"/>; grows only as data arrives.</summary>
    private static byte[] ReadAll(Stream stream, string name)
    {
        if (stream.CanSeek)
        {
            long remaining = stream.Length - stream.Position;
            if (remaining > ImageLimits.MaxFileBytes)
                throw new ImageFormatException($"{name}: file of {remaining} bytes is over the {ImageLimits.MaxFileBytes >> 20} MiB limit for an encoded image");
            if (remaining <= 0)
                throw new ImageFormatException($"{name}: not an image: the file is empty");
            var all = new byte[remaining];
            int got = stream.ReadAtLeast(all, all.Length, throwOnEndOfStream: false);
            if (got != all.Length) Array.Resize(ref all, got);
            if (got == 0) throw new ImageFormatException($"{name}: not an image: the file is empty");
            return all;
        }
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (buffer.Length + n > ImageLimits.MaxFileBytes)
                    throw new ImageFormatException($"{name}: stream is over the {ImageLimits.MaxFileBytes >> 20} MiB limit for an encoded image");
                buffer.Write(chunk, 0, n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        if (buffer.Length == 0) throw new ImageFormatException($"{name}: not an image: the file is empty");
        return buffer.ToArray();
    }

}
