using System.Text;
using OmniKernels.Images;
using OmniKernels.IO;
using OmniKernels.Model;

namespace OmniKernels.Session;

/// <summary>
/// Builds requests from files as the CLI and bulk runs name them: images as PNG/JPEG/GIF/WebP or a
/// <c>.npy</c> of preprocessed pixels [C, H, W]; audio as WAV or a <c>.npy</c> log-mel [mels, frames];
/// video as an animated GIF, a folder of frames or a <c>.npy</c> [T, C, H, W]; and the design articles'
/// modality detector, which decides from a file's first bytes.
/// </summary>
public static class RequestFiles
{
    private static readonly byte[] Npy = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The image in <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">The file is missing, undecodable or of the wrong shape.</exception>
    public static ImageInput Image(string path)
    {
        if (IsNpy(path))
        {
            var a = ReadNpy(path);
            if (a.Shape.Count != 3) throw new ArgumentException($"{path}: an image .npy must be preprocessed pixels [C, H, W], got {a}");
            return new ImageInput { Pixels = a.ToFloat32(path) };
        }
        return new ImageInput { Decoded = DecodeImage(path) };
    }

    /// <summary>The audio in <paramref name="path"/>: a WAV file, or a log-mel <c>.npy</c>.</summary>
    public static AudioInput Audio(string path)
    {
        if (IsNpy(path))
        {
            var a = ReadNpy(path);
            if (a.Shape.Count != 2) throw new ArgumentException($"{path}: an audio .npy must be a log-mel [mels, frames], got {a}");
            return new AudioInput { LogMel = a.ToFloat32(path) };
        }
        try
        {
            var wav = WavFile.Read(path);
            return new AudioInput { Samples = wav.Samples, SampleRate = wav.SampleRate };
        }
        catch (WavFormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    /// <summary>
    /// The clip in <paramref name="path"/>: an animated GIF (its frames as ImageSharp composites them), a video
    /// file read through ffmpeg (<see cref="VideoFile"/>), a folder of frames (in name order) or a <c>.npy</c> [T, C, H, W].
    /// </summary>
    public static VideoInput Video(string path)
    {
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path).Where(f => DetectFile(f) == Modality.Image).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new ArgumentException($"{path}: the folder holds no image frames");
            return new VideoInput { Decoded = files.Select(DecodeImage).ToArray() };
        }
        if (IsGif(path) || (VideoFile.IsVideoFile(path) && File.Exists(path)))
        {
            try
            {
                return new VideoInput { Decoded = IsGif(path) ? ImageFile.ReadFrames(path, 3) : VideoFile.ReadFrames(path) };
            }
            catch (ImageFormatException e)
            {
                throw new ArgumentException(e.Message, e);
            }
        }
        if (!IsNpy(path)) throw new ArgumentException($"{path}: a video is an animated GIF, a video file (MP4, MKV, WebM, AVI, MOV through ffmpeg), a folder of frames or a .npy [T, C, H, W]");
        var a = ReadNpy(path);
        if (a.Shape.Count != 4) throw new ArgumentException($"{path}: a video .npy must be frames [T, C, H, W], got {a}");
        return new VideoInput { Frames = a.ToFloat32(path) };
    }

    /// <summary>Parses "1,2,3" into token ids.</summary>
    public static int[] TextIds(string list)
    {
        try
        {
            return list.Split(',', StringSplitOptions.TrimEntries).Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"--text-ids '{list}': expected comma-separated integers");
        }
    }

    /// <summary>
    /// The modality of a file from its content: PNG, JPEG, GIF or WebP magic is an image (BMP magic too, so
    /// that the decoder says why it is refused); RIFF/WAVE is
    /// audio; a folder is video frames; a <c>.npy</c> by its rank (3 image, 2 audio log-mel, 4 video);
    /// a video container by its extension (MP4, MKV, WebM, AVI, MOV); anything else that is valid UTF-8 is text.
    /// </summary>
    public static Modality DetectFile(string path)
    {
        if (Directory.Exists(path)) return Modality.Video;
        if (!File.Exists(path)) throw new ArgumentException($"{path}: no such file");
        Span<byte> head = stackalloc byte[12];
        int n;
        using (var f = File.OpenRead(path)) n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var h = head[..n];
        if (h.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G']) || h.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]) ||
            h.StartsWith("GIF8"u8) || h.StartsWith("BM"u8) || (n >= 12 && h[..4].SequenceEqual("RIFF"u8) && h[8..12].SequenceEqual("WEBP"u8)))
            return Modality.Image;
        if (n >= 12 && h[..4].SequenceEqual("RIFF"u8) && h[8..12].SequenceEqual("WAVE"u8)) return Modality.Audio;
        if (h.StartsWith(Npy))
            return ReadNpy(path).Shape.Count switch
            {
                3 => Modality.Image,
                2 => Modality.Audio,
                4 => Modality.Video,
                var r => throw new ArgumentException($"{path}: a .npy of rank {r} is no modality (3: image, 2: audio log-mel, 4: video)"),
            };
        if (VideoFile.IsVideoFile(path)) return Modality.Video;
        return Modality.Text;
    }

    /// <summary>The text of a file detected as text: strict UTF-8.</summary>
    public static string ReadText(string path)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)).Trim();
        }
        catch (DecoderFallbackException)
        {
            throw new ArgumentException($"{path}: not an image, WAV, .npy or UTF-8 text");
        }
    }

    /// <summary>Adds the file's content to <paramref name="request"/> under its detected modality; says which.</summary>
    public static (OmniRequest Request, Modality Modality) AddDetected(OmniRequest request, string path)
    {
        var m = DetectFile(path);
        var r = m switch
        {
            Modality.Image => request with { Image = Image(path) },
            Modality.Audio => request with { Audio = Audio(path) },
            Modality.Video => request with { Video = Video(path) },
            _ => request with { Text = ReadText(path) },
        };
        return (r, m);
    }

    private static bool IsGif(string path) =>
        File.Exists(path) && InputFile.Read(path, s =>
        {
            Span<byte> b = stackalloc byte[4];
            return s.ReadAtLeast(b, 4, throwOnEndOfStream: false) == 4 && b.SequenceEqual("GIF8"u8);
        }, m => new ArgumentException(m));

    private static bool IsNpy(string path) =>
        File.Exists(path) && InputFile.Read(path, s =>
        {
            Span<byte> b = stackalloc byte[6];
            return s.ReadAtLeast(b, 6, throwOnEndOfStream: false) == 6 && b.SequenceEqual(Npy);
        }, m => new ArgumentException(m));

    private static NpyArray ReadNpy(string path)
    {
        try
        {
            return NpyFile.Read(path);
        }
        catch (NpyFormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    private static DecodedImage DecodeImage(string path)
    {
        try
        {
            return ImageFile.Read(path, 3);
        }
        catch (ImageFormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }
}
