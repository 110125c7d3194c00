using FFMpegCore;
using FFMpegCore.Exceptions;
using FFMpegCore.Pipes;

namespace OmniKernels.Images;

/// <summary>
/// Reads the frames of a common video file (MP4, MKV, WebM, AVI, MOV) through FFMpegCore with the system's
/// <c>ffmpeg</c> and <c>ffprobe</c> (Debian's <c>ffmpeg</c> package), as 8-bit RGB.
/// </summary>
/// <remarks>
/// The size ffprobe reports is checked against <see cref="ImageLimits"/> before decoding, and ffmpeg is told to
/// stop one frame past the frame cap (<see cref="ImageLimits.MaxGifFrames"/> and
/// <see cref="ImageLimits.MaxAnimationBytes"/>, as for GIF), so a long or huge video is refused without holding
/// more than that. Thread-safe: every call runs its own ffmpeg process.
/// </remarks>
public static class VideoFile
{
    /// <summary>The Debian package that provides ffmpeg and ffprobe, named in the error when they are missing.</summary>
    public const string DebianPackage = "ffmpeg";

    private static readonly string[] Extensions = [".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov"];

    /// <summary>Whether <paramref name="path"/> names a video container this reader hands to ffmpeg (by extension).</summary>
    public static bool IsVideoFile(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Every frame of the video at <paramref name="path"/>, RGB (3 channels).</summary>
    /// <exception cref="ImageFormatException">
    /// The file is missing, ffmpeg or ffprobe is not installed (the message names the Debian package), ffmpeg cannot
    /// read it, it has no video stream, or it is over the limits.
    /// </exception>
    public static IReadOnlyList<DecodedImage> ReadFrames(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ImageFormatException($"{path}: file not found");
        foreach (string tool in new[] { "ffprobe", "ffmpeg" })
            if (!OnPath(tool))
                throw new ImageFormatException(
                    $"{path}: reading video files needs {tool}, which is not on PATH; install Debian's {DebianPackage} package (apt-get install {DebianPackage})");
        IMediaAnalysis info;
        try
        {
            info = FFProbe.Analyse(path);
        }
        catch (FFMpegException e)
        {
            throw new ImageFormatException($"{path}: not a video ffmpeg can read: {FirstLine(e.Message)}");
        }
        var stream = info.PrimaryVideoStream ?? throw new ImageFormatException($"{path}: the file has no video stream");
        if (stream.Width is not int width || stream.Height is not int height)
            throw new ImageFormatException($"{path}: ffprobe reports no frame size for the video stream");
        ImageLimits.Check(path, "video", width, height);
        long frameBytes = (long)width * height * 3;
        int max = (int)Math.Min(ImageLimits.MaxGifFrames, Math.Max(1, ImageLimits.MaxAnimationBytes / (frameBytes / 3 * 4)));
        using var raw = new MemoryStream();
        try
        {
            // One frame past the cap, so that a longer video is refused rather than cut short.
            FFMpegArguments.FromFileInput(path)
                .OutputToPipe(new StreamPipeSink(raw), o => o.WithVideoCodec("rawvideo").WithPixelFormat("rgb24").ForceFormat("rawvideo").WithCustomArgument($"-frames:v {max + 1}"))
                .ProcessSynchronously();
        }
        catch (FFMpegException e)
        {
            throw new ImageFormatException($"{path}: ffmpeg could not decode the video: {FirstLine(e.Message)}");
        }
        if (raw.Length == 0 || raw.Length % frameBytes != 0)
            throw new ImageFormatException($"{path}: ffmpeg returned {raw.Length} bytes, not whole {width}×{height} RGB frames");
        long count = raw.Length / frameBytes;
        if (count > max)
            throw new ImageFormatException($"{path}: video has more than {max} frames of {width}×{height}, over the limit of {ImageLimits.MaxGifFrames} frames and {ImageLimits.MaxAnimationBytes >> 20} MiB of frames");
        var all = raw.GetBuffer();
        var frames = new DecodedImage[count];
        for (int i = 0; i < count; i++)
            frames[i] = new DecodedImage(all.AsSpan((int)(i * frameBytes), (int)frameBytes).ToArray(), width, height, 3);
        return frames;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));

    private static string FirstLine(string message) => message.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "(no message)";
}
