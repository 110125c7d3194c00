using System.Buffers.Binary;
using SixLabors.ImageSharp;

namespace OmniKernels.Images;

/// <summary>The format and dimensions an image file's header claims, read without decoding any pixel.</summary>
/// <param name="Format">PNG, JPEG, GIF or WebP.</param>
/// <param name="Width">Columns the header claims.</param>
/// <param name="Height">Rows the header claims.</param>
public readonly record struct ImageHeader(string Format, long Width, long Height)
{
    /// <summary>Formats <see cref="ImageSharpDecoder"/> reads, for messages.</summary>
    public const string Supported = "supported: PNG, JPEG, GIF, WebP";

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Identifies the format by its signature and reads the dimensions with ImageSharp's <c>Image.Identify</c>
    /// (headers only, no pixel memory). Formats that are recognised but not enabled (BMP, TIFF and others) are
    /// named in the message, with the reason for TIFF and BMP. The file's structure is walked to its end marker
    /// first (<see cref="EndsWhole"/>): ImageSharp decodes missing data as zeros, so a cut file is caught here.
    /// </summary>
    /// <exception cref="ImageFormatException">The data is empty, in an unsupported format, or its header is truncated or corrupt.</exception>
    public static ImageHeader Probe(byte[] data, string name)
    {
        ArgumentNullException.ThrowIfNull(data);
        string format = Sniff(data, name);
        if (!EndsWhole(format, data))
            throw new ImageFormatException($"{name}: truncated {format}: the data ends before the image does");
        using var stream = new MemoryStream(data, writable: false);
        IImageInfo? info;
        try
        {
            info = Image.Identify(ImageSharpSetup.Configuration, stream);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new ImageFormatException($"{name}: corrupt {format} header: {ImageSharpDecoder.Reason(ex)}");
        }
        if (info is null) throw new ImageFormatException($"{name}: corrupt {format}: its header could not be read");
        return new ImageHeader(format, info.Width, info.Height);
    }

    /// <summary>
    /// Whether the data reaches the format's own end: PNG's IEND chunk (walking the chunk lengths), JPEG's EOI
    /// after its last scan (entropy-coded data stuffs every 0xFF, so FF D9 there is a marker), the GIF trailer
    /// (walking blocks and sub-blocks), and WebP's RIFF size.
    /// </summary>
    private static bool EndsWhole(string format, ReadOnlySpan<byte> d)
    {
        switch (format)
        {
            case "PNG":
                for (long p = 8; p + 8 <= d.Length; p += 12L + BinaryPrimitives.ReadUInt32BigEndian(d[(int)p..]))
                    if (d.Slice((int)p + 4, 4).SequenceEqual("IEND"u8)) return true;
                return false;
            case "JPEG":
                return d.LastIndexOf((ReadOnlySpan<byte>)[0xFF, 0xD9]) > d.LastIndexOf((ReadOnlySpan<byte>)[0xFF, 0xDA]);
            case "GIF":
                return GifEndsWhole(d);
            default: // WebP
                return d.Length >= 8 && d.Length >= 8L + BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
        }
    }

    private static bool GifEndsWhole(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13) return false;
        long p = 13 + ((d[10] & 0x80) != 0 ? 3L << ((d[10] & 7) + 1) : 0);
        while (p < d.Length)
        {
            byte block = d[(int)p++];
            if (block == 0x3B) return true;
            if (block == 0x21) p++; // extension label
            else if (block == 0x2C)
            {
                if (p + 9 > d.Length) return false;
                byte flags = d[(int)p + 8];
                p += 9 + ((flags & 0x80) != 0 ? 3L << ((flags & 7) + 1) : 0) + 1; // descriptor, local table, LZW code size
            }
            else return false; // not a block: corrupt, and the decoder will say so; treat as cut
            while (true) // sub-blocks, ended by a zero length
            {
                if (p >= d.Length) return false;
                byte n = d[(int)p++];
                if (n == 0) break;
                p += n;
            }
        }
        return false;
    }

    /// <summary>The format named by the signature, or an exception naming what the data is instead.</summary>
    private static string Sniff(ReadOnlySpan<byte> data, string name)
    {
        if (data.IsEmpty) throw new ImageFormatException($"{name}: not an image: the file is empty");
        if (data.StartsWith(PngSignature)) return "PNG";
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return "JPEG";
        if (data.StartsWith("GIF87a"u8) || data.StartsWith("GIF89a"u8)) return "GIF";
        if (data.StartsWith("RIFF"u8) && data.Length >= 12 && data[8..12].SequenceEqual("WEBP"u8)) return "WebP";
        string? disabled = data.StartsWith("BM"u8) ? "BMP (disabled: ImageSharp 2.1.13's BMP decoder has unfixed allocation advisories, SixLabors/ImageSharp#3074)"
            : data.StartsWith("II*\0"u8) || data.StartsWith("MM\0*"u8) ? "TIFF (disabled: ImageSharp 2.1.13's TIFF decoder has unfixed advisories, GHSA-wmxv-xphr-5c9g)"
            : data.StartsWith("8BPS"u8) ? "Photoshop (PSD)"
            : data.StartsWith("#?RADIANCE"u8) || data.StartsWith("#?RGBE"u8) ? "Radiance HDR"
            : data.StartsWith("qoif"u8) ? "QOI"
            : data.StartsWith((ReadOnlySpan<byte>)[0, 0, 1, 0]) ? "ICO"
            : null;
        if (disabled is not null)
            throw new ImageFormatException($"{name}: unsupported image format {disabled}; {Supported}");
        throw new ImageFormatException($"{name}: not an image in a supported format (unrecognised signature {Hex(data[..Math.Min(8, data.Length)])}); {Supported}");
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
