using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace OmniKernels.IO;

/// <summary>A <c>.wav</c> file (or stream) is missing, malformed, or holds something this reader does not support.</summary>
public sealed class WavFormatException : Exception
{
    /// <summary>Creates the exception with a one-line message that names the file and the problem.</summary>
    public WavFormatException(string message) : base(message) { }
}

/// <summary>Audio decoded from a WAV file, mixed down to mono.</summary>
/// <param name="Samples">
/// One sample per frame: the average of the source channels. PCM data is normalised to [-1, 1); float data is
/// passed through as stored (not clipped), as soundfile and torchaudio do.
/// </param>
/// <param name="SampleRate">Frames per second.</param>
/// <param name="SourceChannels">How many channels the file held before the mixdown.</param>
/// <param name="SourceEncoding">
/// The stored sample encoding: <c>pcm8</c>, <c>pcm16</c>, <c>pcm24</c>, <c>pcm32</c>, <c>float32</c> or <c>float64</c>.
/// </param>
public sealed record WavAudio(float[] Samples, int SampleRate, int SourceChannels, string SourceEncoding);

/// <summary>
/// Reads RIFF/WAVE files holding PCM (8-bit unsigned, 16-, 24- and 32-bit signed) or IEEE float (32- and 64-bit)
/// samples, plain or as WAVE_FORMAT_EXTENSIBLE, with any number of channels, and mixes them down to mono float.
/// The conversions match <c>torchaudio.load</c> / <c>soundfile.read</c> with normalisation, so the audio front end
/// can be compared against them sample for sample.
/// </summary>
public static class WavFile
{
    private const ushort TagPcm = 1;
    private const ushort TagFloat = 3;
    private const ushort TagExtensible = 0xFFFE;
    private const int PlainFmtSize = 16;
    private const int ExtensibleFmtSize = 40;
    /// <summary>Bytes decoded per read; bounds the scratch buffer whatever the header claims.</summary>
    private const int ChunkBytes = 1 << 16;
    /// <summary>First output size for a stream whose length is unknown; grows only as data actually arrives.</summary>
    private const int InitialUnverifiedFrames = 1 << 14;

    /// <summary>
    /// Bytes 2..15 of every KSDATAFORMAT_SUBTYPE GUID ({XXXXXXXX-0000-0010-8000-00AA00389B71}, stored little-endian);
    /// the first two bytes carry the plain format tag.
    /// </summary>
    private static readonly byte[] SubFormatSuffix =
        [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    private enum SampleKind { Pcm8, Pcm16, Pcm24, Pcm32, Float32, Float64 }

    private readonly record struct Format(SampleKind Kind, int Channels, int SampleRate, int BlockAlign, string Encoding);

    /// <summary>Reads the WAV file at <paramref name="path"/> and mixes it down to mono.</summary>
    /// <exception cref="WavFormatException">The file is missing, unreadable, malformed or unsupported.</exception>
    public static WavAudio Read(string path) =>
        InputFile.Read(path, stream => Read(stream, path), message => new WavFormatException(message));

    /// <summary>
    /// Reads a WAV file from the current position of <paramref name="stream"/> and mixes it down to mono;
    /// <paramref name="nameForErrors"/> starts every error message. A seekable stream's length is used to check
    /// chunk sizes before anything is allocated; a non-seekable stream is read sequentially and buffers grow only
    /// with the bytes that actually arrive.
    /// </summary>
    /// <exception cref="WavFormatException">The content is malformed or unsupported.</exception>
    public static WavAudio Read(Stream stream, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        string name = nameForErrors;
        bool seekable = stream.CanSeek;

        Span<byte> riff = stackalloc byte[12];
        int got = stream.ReadAtLeast(riff, riff.Length, throwOnEndOfStream: false);
        if (got == 0)
            throw new WavFormatException($"{name}: not a WAV file: the file is empty");
        if (got >= 4 && !riff[..4].SequenceEqual("RIFF"u8))
        {
            string hint = riff[..4].SequenceEqual("RIFX"u8) ? ": big-endian RIFX files are not supported"
                : riff[..4].SequenceEqual("RF64"u8) || riff[..4].SequenceEqual("BW64"u8)
                    ? ": 64-bit RF64/BW64 files are not supported"
                : "";
            throw new WavFormatException($"{name}: not a RIFF/WAVE file: starts with '{Escape(riff[..4])}'{hint}");
        }
        if (got < riff.Length)
            throw new WavFormatException($"{name}: truncated header: {got} bytes, a WAV file starts with 12 (RIFF, size, WAVE)");
        if (!riff[8..12].SequenceEqual("WAVE"u8))
            throw new WavFormatException($"{name}: not a RIFF/WAVE file: RIFF form type is '{Escape(riff[8..12])}', not 'WAVE'");
        // The RIFF size field is not used: streaming writers leave it 0 or 0xFFFFFFFF and soundfile ignores it too.
        // Every chunk size is checked against the bytes actually present instead.

        Format? format = null;
        // A data chunk that comes before fmt: its position (seekable) or its bytes (non-seekable).
        long pendingDataStart = -1;
        long pendingDataSize = 0;
        byte[]? pendingData = null;

        Span<byte> header = stackalloc byte[8];
        while (true)
        {
            got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            if (got == 0) break;
            if (got < header.Length)
                throw new WavFormatException($"{name}: truncated header: file ends inside a chunk header ({got} of 8 bytes)");
            string id = Escape(header[..4]);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);

            if (id == "fmt ")
            {
                if (format != null)
                    throw new WavFormatException($"{name}: more than one fmt chunk");
                format = ReadFormat(stream, size, name);
                SkipPad(stream, size);
                if (pendingData != null)
                    return Decode(new MemoryStream(pendingData, writable: false), pendingDataSize, format.Value, name);
                if (pendingDataStart >= 0)
                {
                    stream.Seek(pendingDataStart, SeekOrigin.Begin);
                    return Decode(stream, pendingDataSize, format.Value, name);
                }
            }
            else if (id == "data")
            {
                if (pendingDataStart >= 0 || pendingData != null)
                    throw new WavFormatException($"{name}: more than one data chunk");
                if (format != null)
                    return Decode(stream, size, format.Value, name);
                // fmt comes later: remember where the samples are (or keep them, if we cannot seek back).
                pendingDataSize = size;
                if (seekable)
                {
                    pendingDataStart = stream.Position;
                    long remaining = Math.Max(0, stream.Length - pendingDataStart);
                    if (size > remaining)
                        throw new WavFormatException(
                            $"{name}: truncated data: data chunk claims {size} bytes but only {remaining} follow");
                    stream.Seek(size, SeekOrigin.Current);
                }
                else
                {
                    pendingData = ReadBytes(stream, size, name);
                }
                SkipPad(stream, size);
            }
            else
            {
                // LIST, fact, cue, bext, JUNK, ... carry nothing the samples need.
                Skip(stream, size, id, name);
                SkipPad(stream, size);
            }
        }

        if (format == null)
            throw new WavFormatException(pendingDataStart >= 0 || pendingData != null
                ? $"{name}: no fmt chunk: the data chunk cannot be decoded without one"
                : $"{name}: no fmt chunk (and no data chunk)");
        throw new WavFormatException($"{name}: no data chunk");
    }

    // ---- fmt -----------------------------------------------------------------------------------------------

    private static Format ReadFormat(Stream stream, uint size, string name)
    {
        if (size < PlainFmtSize)
            throw new WavFormatException($"{name}: fmt chunk too short: {size} bytes, need at least {PlainFmtSize}");
        // Only the first 40 bytes mean anything to us; anything after the extensible fields is skipped.
        Span<byte> fmt = stackalloc byte[ExtensibleFmtSize];
        int want = (int)Math.Min(size, ExtensibleFmtSize);
        int got = stream.ReadAtLeast(fmt[..want], want, throwOnEndOfStream: false);
        if (got < want)
            throw new WavFormatException($"{name}: truncated fmt chunk: it claims {size} bytes but only {got} follow");
        Skip(stream, size - (uint)want, "fmt ", name);

        ushort tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
        int channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
        uint sampleRate = BinaryPrimitives.ReadUInt32LittleEndian(fmt[4..]);
        // fmt[8..12] is the byte rate: redundant (rate × block align) and often wrong in the wild, so not checked.
        int blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt[12..]);
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);

        ushort effectiveTag = tag;
        string container = "";
        if (tag == TagExtensible)
        {
            if (size < ExtensibleFmtSize)
                throw new WavFormatException(
                    $"{name}: fmt chunk too short for WAVE_FORMAT_EXTENSIBLE: {size} bytes, need {ExtensibleFmtSize}");
            int validBits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[18..]);
            ReadOnlySpan<byte> subFormat = fmt[24..40];
            if (!subFormat[2..].SequenceEqual(SubFormatSuffix))
                throw new WavFormatException(
                    $"{name}: unsupported encoding: WAVE_FORMAT_EXTENSIBLE SubFormat {new Guid(subFormat):B} is not PCM or IEEE float");
            effectiveTag = BinaryPrimitives.ReadUInt16LittleEndian(subFormat);
            container = " in WAVE_FORMAT_EXTENSIBLE";
            // Samples are decoded by their container size (wBitsPerSample); the unused low bits of a 20-in-24 file are
            // zero, so this gives the same values soundfile does. Zero is tolerated: some writers leave it unset.
            if (validBits > bits)
                throw new WavFormatException(
                    $"{name}: inconsistent fmt chunk: {validBits} valid bits per sample in a {bits}-bit container");
        }

        if (effectiveTag is not (TagPcm or TagFloat))
            throw new WavFormatException(
                $"{name}: unsupported encoding {TagName(effectiveTag)}{container} (format tag {effectiveTag}); " +
                "supported: PCM (1), IEEE float (3) and WAVE_FORMAT_EXTENSIBLE with a PCM or float SubFormat");
        if (channels == 0)
            throw new WavFormatException($"{name}: invalid fmt chunk: zero channels");
        if (sampleRate == 0)
            throw new WavFormatException($"{name}: invalid fmt chunk: zero sample rate");
        if (sampleRate > int.MaxValue)
            throw new WavFormatException($"{name}: invalid fmt chunk: sample rate {sampleRate} is out of range");

        SampleKind? kind = (effectiveTag, bits) switch
        {
            (TagPcm, 8) => SampleKind.Pcm8,
            (TagPcm, 16) => SampleKind.Pcm16,
            (TagPcm, 24) => SampleKind.Pcm24,
            (TagPcm, 32) => SampleKind.Pcm32,
            (TagFloat, 32) => SampleKind.Float32,
            (TagFloat, 64) => SampleKind.Float64,
            _ => null,
        };
        if (kind == null)
            throw new WavFormatException(effectiveTag == TagPcm
                ? $"{name}: unsupported bit depth: {bits}-bit PCM (supported: 8, 16, 24, 32)"
                : $"{name}: unsupported bit depth: {bits}-bit IEEE float (supported: 32, 64)");

        int bytesPerSample = bits / 8;
        if (blockAlign != channels * bytesPerSample)
            throw new WavFormatException(
                $"{name}: invalid fmt chunk: block align {blockAlign} does not match {channels} channels x " +
                $"{bytesPerSample} bytes per sample (expected {channels * bytesPerSample})");

        string encoding = (effectiveTag == TagPcm ? "pcm" : "float") + bits.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new Format(kind.Value, channels, (int)sampleRate, blockAlign, encoding);
    }

    private static string TagName(ushort tag) => tag switch
    {
        0 => "unknown",
        2 => "MS ADPCM",
        6 => "A-law",
        7 => "mu-law",
        0x11 => "IMA ADPCM",
        0x31 => "GSM 6.10",
        0x50 => "MPEG",
        0x55 => "MP3",
        _ => "other",
    };

    // ---- data ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Decodes a data chunk of <paramref name="size"/> bytes starting at the current position of <paramref name="stream"/>.
    /// A trailing partial frame is ignored, as libsndfile (soundfile, torchaudio's sox/soundfile backends) does:
    /// truncated writes leave one behind and the whole frames before it are still good audio.
    /// </summary>
    private static WavAudio Decode(Stream stream, long size, Format format, string name)
    {
        bool verified = false;
        if (stream.CanSeek)
        {
            long remaining = Math.Max(0, stream.Length - stream.Position);
            if (size > remaining)
                throw new WavFormatException($"{name}: truncated data: data chunk claims {size} bytes but only {remaining} follow");
            verified = true;
        }
        long frames = size / format.BlockAlign;
        if (frames == 0)
            throw new WavFormatException(size == 0
                ? $"{name}: no samples: the data chunk is empty"
                : $"{name}: no samples: the data chunk holds {size} bytes, less than one {format.BlockAlign}-byte frame");
        if (frames > Array.MaxLength)
            throw new WavFormatException($"{name}: data chunk holds {frames} frames, more than one .NET array can hold");

        // With a verified length the output can be sized up front; otherwise it grows only as whole frames arrive,
        // so a header claiming 4 GiB in a 100-byte stream costs nothing.
        var samples = new float[verified ? frames : Math.Min(frames, InitialUnverifiedFrames)];
        int framesPerChunk = Math.Max(1, ChunkBytes / format.BlockAlign);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(framesPerChunk * format.BlockAlign);
        try
        {
            long done = 0;
            while (done < frames)
            {
                int n = (int)Math.Min(framesPerChunk, frames - done);
                int bytes = n * format.BlockAlign;
                int got = stream.ReadAtLeast(scratch.AsSpan(0, bytes), bytes, throwOnEndOfStream: false);
                if (got < bytes)
                    throw new WavFormatException(
                        $"{name}: truncated data: data chunk claims {size} bytes but only {done * format.BlockAlign + got} follow");
                if (done + n > samples.Length)
                    Array.Resize(ref samples, (int)Math.Min(frames, Math.Max(2L * samples.Length, done + n)));
                DecodeFrames(scratch.AsSpan(0, bytes), samples.AsSpan((int)done, n), format);
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        return new WavAudio(samples, format.SampleRate, format.Channels, format.Encoding);
    }

    /// <summary>
    /// Converts whole frames to mono: each sample is normalised exactly (division by a power of two), the channels
    /// are summed and averaged in double, and only the mean is rounded to float.
    /// </summary>
    private static void DecodeFrames(ReadOnlySpan<byte> src, Span<float> dst, Format format)
    {
        int channels = format.Channels;
        int at = 0;
        switch (format.Kind)
        {
            case SampleKind.Pcm8:
                // 8-bit WAV is unsigned with 128 as silence.
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at++) sum += (src[at] - 128) / 128.0;
                    dst[i] = (float)(sum / channels);
                }
                break;
            case SampleKind.Pcm16:
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at += 2)
                        sum += BinaryPrimitives.ReadInt16LittleEndian(src[at..]) / 32768.0;
                    dst[i] = (float)(sum / channels);
                }
                break;
            case SampleKind.Pcm24:
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at += 3)
                    {
                        // Put the three bytes in the top of an int and shift back arithmetically to sign-extend.
                        int value = (src[at] << 8 | src[at + 1] << 16 | src[at + 2] << 24) >> 8;
                        sum += value / 8388608.0;
                    }
                    dst[i] = (float)(sum / channels);
                }
                break;
            case SampleKind.Pcm32:
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at += 4)
                        sum += BinaryPrimitives.ReadInt32LittleEndian(src[at..]) / 2147483648.0;
                    dst[i] = (float)(sum / channels);
                }
                break;
            case SampleKind.Float32:
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at += 4) sum += BinaryPrimitives.ReadSingleLittleEndian(src[at..]);
                    dst[i] = (float)(sum / channels);
                }
                break;
            default:
                for (int i = 0; i < dst.Length; i++)
                {
                    double sum = 0;
                    for (int c = 0; c < channels; c++, at += 8) sum += BinaryPrimitives.ReadDoubleLittleEndian(src[at..]);
                    dst[i] = (float)(sum / channels);
                }
                break;
        }
    }

    // ---- stream helpers ------------------------------------------------------------------------------------

    /// <summary>Skips <paramref name="count"/> bytes of a chunk body, failing if the stream holds fewer.</summary>
    private static void Skip(Stream stream, long count, string chunkId, string name)
    {
        if (count == 0) return;
        if (stream.CanSeek)
        {
            long remaining = Math.Max(0, stream.Length - stream.Position);
            if (count > remaining)
                throw new WavFormatException(
                    $"{name}: truncated '{chunkId.TrimEnd()}' chunk: it claims {count} more bytes but only {remaining} follow");
            stream.Seek(count, SeekOrigin.Current);
            return;
        }
        byte[] scratch = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            long skipped = 0;
            while (skipped < count)
            {
                int got = stream.Read(scratch, 0, (int)Math.Min(scratch.Length, count - skipped));
                if (got == 0)
                    throw new WavFormatException(
                        $"{name}: truncated '{chunkId.TrimEnd()}' chunk: it claims {count} more bytes but only {skipped} follow");
                skipped += got;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// RIFF pads odd-sized chunks to an even length. A missing pad byte at the very end of the file is tolerated:
    /// some writers omit it on the last chunk.
    /// </summary>
    private static void SkipPad(Stream stream, long size)
    {
        if ((size & 1) == 0) return;
        if (stream.CanSeek)
        {
            if (stream.Position < stream.Length) stream.Seek(1, SeekOrigin.Current);
        }
        else
        {
            stream.ReadByte();
        }
    }

    /// <summary>
    /// Reads exactly <paramref name="size"/> bytes of a data chunk from a non-seekable stream, growing the buffer only
    /// as bytes arrive so that a lying header cannot make us allocate what it claims.
    /// </summary>
    private static byte[] ReadBytes(Stream stream, long size, string name)
    {
        if (size > Array.MaxLength)
            throw new WavFormatException($"{name}: data chunk of {size} bytes is too large to buffer before its fmt chunk");
        var buffer = new byte[Math.Min(size, ChunkBytes)];
        int filled = 0;
        while (filled < size)
        {
            if (filled == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(size, 2L * buffer.Length));
            int got = stream.Read(buffer, filled, buffer.Length - filled);
            if (got == 0)
                throw new WavFormatException($"{name}: truncated data: data chunk claims {size} bytes but only {filled} follow");
            filled += got;
        }
        return buffer;
    }

    // ---- messages ------------------------------------------------------------------------------------------

    /// <summary>A chunk id or magic as text, with non-printable bytes as <c>\xNN</c> so the message stays one line.</summary>
    private static string Escape(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            if (b is >= 0x20 and < 0x7F and not (byte)'\'' and not (byte)'\\') sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

}
