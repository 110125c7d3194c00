using System.Buffers;
using StbImageSharp;

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
/// absurd dimensions fails fast.
/// </summary>
public static class ImageLimits
{
    /// <summary>Largest width or height accepted: 16384.</summary>
    public const int MaxDimension = 16384;

    /// <summary>
    /// Largest pixel buffer accepted, 256 MiB, counted as Width · Height · 4 bytes (the widest buffer decoding
    /// or channel conversion may make), i.e. at most 64 Mi pixels, e.g. 8192 × 8192 or 16384 × 4096.
    /// </summary>
    public const long MaxPixelBytes = 256L << 20;

    /// <summary>Largest encoded file accepted: 512 MiB.</summary>
    public const long MaxFileBytes = 512L << 20;

    /// <summary>
    /// Throws <see cref="ImageFormatException"/> when <paramref name="width"/> × <paramref name="height"/> is empty or
    /// over the limits; the message starts with <paramref name="name"/> and names <paramref name="format"/>.
    /// </summary>
    public static void Check(string name, string format, long width, long height)
    {
        if (width <= 0 || height <= 0)
            throw new ImageFormatException($"{name}: {format} header claims an empty image ({width}×{height})");
        if (width > MaxDimension || height > MaxDimension || width * height * 4 > MaxPixelBytes)
            throw new ImageFormatException(
                $"{name}: {format} header claims {width}×{height} pixels, over the limit of {MaxDimension} per side and {MaxPixelBytes >> 20} MiB of RGBA pixels; the file is corrupt or too large");
    }
}

/// <summary>
/// Decodes PNG (8-bit; 16-bit is reduced to its high byte), JPEG (baseline and progressive), BMP, GIF (the first
/// frame) and TGA with StbImageSharp. The header is parsed first (<see cref="ImageHeader"/>) and its dimensions
/// checked against <see cref="ImageLimits"/>; data that ends before the image does is reported as truncated
/// (stb_image would otherwise decode the missing bytes as zeros).
/// </summary>
/// <remarks>
/// Pixels equal Pillow's for PNG, BMP, GIF and TGA. JPEG decoders may differ by a few levels (stb_image's IDCT
/// and chroma upsampling are not libjpeg-turbo's; 2 levels at most on the test image). Not matched: GIF
/// transparency (stb_image composes transparent pixels to transparent black or the background colour; Pillow's
/// <c>convert("RGB")</c> gives the palette colour), 16-bit grayscale PNG (stb_image keeps the high byte; Pillow's
/// "I;16" → "L" clamps), CMYK JPEG. EXIF orientation is not applied (nor is it by Pillow's <c>Image.open</c>).
/// Data that follows the pixels (BMP row padding of the last row, GIF's trailer, TGA's footer) is not needed, so
/// a file cut there still decodes. Thread-safe, except that concurrent failures may swap stb_image's failure
/// reasons (a static field) between messages.
/// </remarks>
public sealed class StbImageDecoder : IImageDecoder
{
    /// <summary>A shared instance (the decoder holds no state).</summary>
    public static StbImageDecoder Instance { get; } = new();

    /// <inheritdoc/>
    public DecodedImage Decode(Stream stream, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        string name = nameForErrors;
        byte[] data = ReadAll(stream, name);
        var header = ImageHeader.Probe(data, name);
        ImageLimits.Check(name, header.Format, header.Width, header.Height);

        using var source = new BoundedStream(data);
        ImageResult result;
        try
        {
            result = ImageResult.FromStream(source, ColorComponents.Default);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // stb_image reports a failure as InvalidOperationException with a short reason; data corrupt enough
            // may also trip the port's own array accesses. Running out of data is the likelier story when it did.
            if (source.ReadPastEnd)
                throw new ImageFormatException($"{name}: truncated {header.Format}: the data ends before the image does");
            throw new ImageFormatException($"{name}: corrupt {header.Format}: {Reason(ex)}");
        }
        if (source.ReadPastEnd)
            throw new ImageFormatException($"{name}: truncated {header.Format}: the data ends before the image does");
        if (result.Width != header.Width || result.Height != header.Height)
            throw new ImageFormatException(
                $"{name}: corrupt {header.Format}: the header says {header.Width}×{header.Height} but {result.Width}×{result.Height} decoded");
        int channels = (int)result.Comp;
        if (channels is < 1 or > 4 || result.Data.LongLength != (long)result.Width * result.Height * channels)
            throw new ImageFormatException($"{name}: corrupt {header.Format}: the decoder returned {result.Data.LongLength} bytes for {result.Width}×{result.Height}×{channels}");
        return new DecodedImage(result.Data, result.Width, result.Height, channels);
    }

    /// <summary>stb_image's failure reason ("bad huffman code", "bad zlib header", ...), printable, or the exception type.</summary>
    private static string Reason(Exception ex)
    {
        string message = ex is InvalidOperationException ? ex.Message.Trim('\0', ' ') : "";
        bool printable = message.Length > 0 && message.All(c => c >= ' ' && c < '\x7f');
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

    /// <summary>A read-only seekable stream over a byte array that records whether a read asked for bytes past its end.</summary>
    private sealed class BoundedStream(byte[] data) : Stream
    {
        private long _position;

        /// <summary>True once a read wanted more bytes than were left: the decoder ran out of data.</summary>
        public bool ReadPastEnd { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => data.Length;

        public override long Position
        {
            get => _position;
            set => _position = value >= 0 ? value : throw new IOException("seek before the start of the image");
        }

        public override int ReadByte()
        {
            if (_position >= data.Length)
            {
                ReadPastEnd = true;
                return -1;
            }
            return data[_position++];
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            long left = Math.Max(0, data.Length - _position);
            int n = (int)Math.Min(left, buffer.Length);
            if (n < buffer.Length) ReadPastEnd = true;
            data.AsSpan((int)Math.Min(_position, data.Length), n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => data.Length + offset,
            };
            return _position;
        }

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
