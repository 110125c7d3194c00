using System.Buffers.Binary;

namespace OmniKernels.Images;

/// <summary>The format and dimensions an image file's header claims, read without decoding any pixel.</summary>
/// <param name="Format">PNG, JPEG, BMP, GIF or TGA.</param>
/// <param name="Width">Columns the header claims.</param>
/// <param name="Height">Rows the header claims.</param>
public readonly record struct ImageHeader(string Format, long Width, long Height)
{
    /// <summary>Formats <see cref="StbImageDecoder"/> reads, for messages.</summary>
    public const string Supported = "supported: PNG, JPEG, BMP, GIF, TGA";

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Identifies the format by its signature (TGA, which has none, by the same header test stb_image uses) and
    /// reads the dimensions: PNG's IHDR, JPEG's SOF segment, BMP's info header (a negative height, top-down rows,
    /// counts as its magnitude), GIF's logical screen, TGA's image specification.
    /// </summary>
    /// <exception cref="ImageFormatException">The data is empty, in an unsupported format, or ends inside the header.</exception>
    public static ImageHeader Probe(ReadOnlySpan<byte> data, string name)
    {
        if (data.IsEmpty) throw new ImageFormatException($"{name}: not an image: the file is empty");
        if (data.StartsWith(PngSignature)) return Png(data, name);
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return Jpeg(data, name);
        if (data.StartsWith("GIF87a"u8) || data.StartsWith("GIF89a"u8)) return Gif(data, name);
        if (data.StartsWith("BM"u8)) return Bmp(data, name);
        string? other = data.StartsWith("8BPS"u8) ? "Photoshop (PSD)"
            : data.StartsWith("#?RADIANCE"u8) || data.StartsWith("#?RGBE"u8) ? "Radiance HDR"
            : data.StartsWith("RIFF"u8) && data.Length >= 12 && data[8..12].SequenceEqual("WEBP"u8) ? "WebP"
            : data.StartsWith("II*\0"u8) || data.StartsWith("MM\0*"u8) ? "TIFF"
            : null;
        if (other is not null)
            throw new ImageFormatException($"{name}: unsupported image format {other}; {Supported}");
        if (LooksLikeTga(data)) return Tga(data, name);
        throw new ImageFormatException($"{name}: not an image in a supported format (unrecognised signature {Hex(data[..Math.Min(8, data.Length)])}); {Supported}");
    }

    private static ImageHeader Png(ReadOnlySpan<byte> d, string name)
    {
        // signature (8), IHDR length (4) and type (4), width (4), height (4)
        if (d.Length < 24) throw Truncated(name, "PNG");
        if (!d[12..16].SequenceEqual("IHDR"u8))
            throw new ImageFormatException($"{name}: corrupt PNG: the first chunk is not IHDR");
        return new ImageHeader("PNG", BinaryPrimitives.ReadUInt32BigEndian(d[16..]), BinaryPrimitives.ReadUInt32BigEndian(d[20..]));
    }

    private static ImageHeader Jpeg(ReadOnlySpan<byte> d, string name)
    {
        int p = 2;
        while (true)
        {
            if (p >= d.Length) throw Truncated(name, "JPEG");
            if (d[p] != 0xFF) throw new ImageFormatException($"{name}: corrupt JPEG: expected a marker at offset {p}");
            while (p < d.Length && d[p] == 0xFF) p++; // fill bytes
            if (p >= d.Length) throw Truncated(name, "JPEG");
            byte m = d[p++];
            if (m is 0x01 or (>= 0xD0 and <= 0xD7)) continue; // standalone markers
            if (m is 0xD9 or 0xDA)
                throw new ImageFormatException($"{name}: corrupt JPEG: no frame header (SOF) before the {(m == 0xDA ? "scan" : "end")}");
            if (p + 2 > d.Length) throw Truncated(name, "JPEG");
            int length = BinaryPrimitives.ReadUInt16BigEndian(d[p..]);
            if (length < 2) throw new ImageFormatException($"{name}: corrupt JPEG: segment length {length} at offset {p}");
            bool sof = m is >= 0xC0 and <= 0xCF && m is not (0xC4 or 0xC8 or 0xCC);
            if (sof)
            {
                if (m is not (0xC0 or 0xC1 or 0xC2))
                    throw new ImageFormatException(
                        $"{name}: unsupported JPEG process (SOF{m - 0xC0}: lossless, hierarchical or arithmetic-coded); baseline and progressive Huffman JPEGs are supported");
                if (p + 7 > d.Length) throw Truncated(name, "JPEG");
                int height = BinaryPrimitives.ReadUInt16BigEndian(d[(p + 3)..]);
                int width = BinaryPrimitives.ReadUInt16BigEndian(d[(p + 5)..]);
                if (height == 0)
                    throw new ImageFormatException($"{name}: unsupported JPEG: the height is deferred to a DNL marker");
                return new ImageHeader("JPEG", width, height);
            }
            p += length;
        }
    }

    private static ImageHeader Gif(ReadOnlySpan<byte> d, string name)
    {
        if (d.Length < 10) throw Truncated(name, "GIF");
        return new ImageHeader("GIF", BinaryPrimitives.ReadUInt16LittleEndian(d[6..]), BinaryPrimitives.ReadUInt16LittleEndian(d[8..]));
    }

    private static ImageHeader Bmp(ReadOnlySpan<byte> d, string name)
    {
        if (d.Length < 18) throw Truncated(name, "BMP");
        uint infoSize = BinaryPrimitives.ReadUInt32LittleEndian(d[14..]);
        if (infoSize == 12) // OS/2 BITMAPCOREHEADER: 16-bit sizes
        {
            if (d.Length < 26) throw Truncated(name, "BMP");
            return new ImageHeader("BMP", BinaryPrimitives.ReadUInt16LittleEndian(d[18..]), BinaryPrimitives.ReadUInt16LittleEndian(d[20..]));
        }
        if (infoSize is not (40 or 56 or 108 or 124))
            throw new ImageFormatException($"{name}: unsupported BMP info header of {infoSize} bytes (supported: 12, 40, 56, 108, 124)");
        if (d.Length < 26) throw Truncated(name, "BMP");
        long width = BinaryPrimitives.ReadInt32LittleEndian(d[18..]);
        long height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d[22..]));
        return new ImageHeader("BMP", width, height);
    }

    /// <summary>stb_image's <c>stbi__tga_test</c>: colour-map type, image type and depths must be consistent.</summary>
    private static bool LooksLikeTga(ReadOnlySpan<byte> d)
    {
        if (d.Length < 18) return false;
        int colorMapType = d[1], imageType = d[2];
        if (colorMapType > 1) return false;
        if (colorMapType == 1)
        {
            if (imageType is not (1 or 9)) return false;
            if (d[7] is not (8 or 15 or 16 or 24 or 32)) return false;
        }
        else if (imageType is not (2 or 3 or 10 or 11))
        {
            return false;
        }
        if (BinaryPrimitives.ReadUInt16LittleEndian(d[12..]) < 1 || BinaryPrimitives.ReadUInt16LittleEndian(d[14..]) < 1) return false;
        int bits = d[16];
        if (colorMapType == 1 && bits is not (8 or 16)) return false;
        return bits is 8 or 15 or 16 or 24 or 32;
    }

    private static ImageHeader Tga(ReadOnlySpan<byte> d, string name) =>
        new("TGA", BinaryPrimitives.ReadUInt16LittleEndian(d[12..]), BinaryPrimitives.ReadUInt16LittleEndian(d[14..]));

    private static ImageFormatException Truncated(string name, string format) =>
        new($"{name}: truncated {format}: the file ends inside the header");

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
