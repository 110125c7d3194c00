using System.Diagnostics;
using System.Runtime.InteropServices;
using NUnit.Framework;
using OmniKernels.Images;
using OmniKernels.IO;
using OmniKernels.Session;

namespace OmniKernels.Tests;

/// <summary>
/// ImageSharp decoding against Pillow 9.4 (vectors/images/decode_*, tools/make_decode_vectors.py) and the
/// hostile corpus (vectors/images/hostile_*, tools/make_hostile_images.py).
/// </summary>
[TestFixture]
public sealed class ImageDecodeTests
{
    private static string File(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "images", name);

    private static DecodedImage Expected(string name)
    {
        var a = NpyFile.Read(File($"decode_{name}.npy"));
        return new DecodedImage(MemoryMarshal.Cast<sbyte, byte>((sbyte[])a.Data).ToArray(), (int)a.Shape[1], (int)a.Shape[0], (int)a.Shape[2]);
    }

    /// <summary>
    /// File, Pillow's pixels, and the largest level difference allowed: 0 for lossless data; 1 for 16-bit
    /// samples (ImageSharp rounds to 8 bits, Pillow keeps the high byte) and lossy WebP (both port libwebp;
    /// measured 0). JPEG: ImageSharp's IDCT is not libjpeg-turbo's, nor is its chroma upsampling the "fancy"
    /// triangle filter, which shows on the small 4:2:0 progressive image with ±8 levels of noise (measured 7
    /// levels, mean 1.7); the EXIF and CMYK files are 4:4:4. Allowed: the measured maximum plus 1, and a mean of
    /// 2 levels for every JPEG.
    /// </summary>
    public static IEnumerable<TestCaseData> Vectors()
    {
        yield return new TestCaseData("decode_exif6.jpg", "exif6", 3);
        yield return new TestCaseData("decode_exif3.jpg", "exif3", 3);
        yield return new TestCaseData("decode_exif8.jpg", "exif8", 3);
        yield return new TestCaseData("decode_progressive.jpg", "progressive", 8);
        yield return new TestCaseData("decode_cmyk.jpg", "cmyk", 2);
        yield return new TestCaseData("decode_rgb16.png", "rgb16", 1);
        yield return new TestCaseData("decode_gray16.png", "gray16", 1);
        yield return new TestCaseData("decode_palette_alpha.png", "palette_alpha", 0);
        yield return new TestCaseData("decode_lossless_alpha.webp", "lossless_alpha", 0);
        yield return new TestCaseData("decode_lossy.webp", "lossy", 1);
    }

    [TestCaseSource(nameof(Vectors))]
    public void Decodes_like_Pillow(string file, string expected, int maxLevels)
    {
        var got = ImageFile.Read(File(file), 3);
        var want = Expected($"{expected}_rgb");
        Assert.That((got.Width, got.Height), Is.EqualTo((want.Width, want.Height)), "size (EXIF orientation applied)");
        Compare(got, want, maxLevels, file);
        if (System.IO.File.Exists(File($"decode_{expected}_rgba.npy")))
            Compare(ImageFile.Read(File(file), 4), Expected($"{expected}_rgba"), maxLevels, file + " as RGBA");
    }

    private static void Compare(DecodedImage got, DecodedImage want, int maxLevels, string what)
    {
        Assert.That(got.Pixels.Length, Is.EqualTo(want.Pixels.Length), what);
        int max = 0;
        long sum = 0;
        for (int i = 0; i < got.Pixels.Length; i++)
        {
            int d = Math.Abs(got.Pixels[i] - want.Pixels[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        double mean = (double)sum / got.Pixels.Length;
        TestContext.Out.WriteLine($"{what}: max |ImageSharp − Pillow| = {max} levels, mean {mean:F3}");
        Assert.That(max, Is.LessThanOrEqualTo(maxLevels), what);
        Assert.That(mean, Is.LessThanOrEqualTo(2.0), what);
    }

    [Test]
    public void Animated_gif_is_a_video_of_its_frames()
    {
        var frames = NpyFile.Read(File("decode_anim_frames.npy"));
        var want = MemoryMarshal.Cast<sbyte, byte>((sbyte[])frames.Data).ToArray();
        var video = RequestFiles.Video(File("decode_anim.gif"));
        Assert.That(video.Decoded, Has.Count.EqualTo(frames.Shape[0]));
        int per = (int)(frames.Shape[1] * frames.Shape[2] * 3);
        for (int i = 0; i < video.Decoded!.Count; i++)
        {
            var f = video.Decoded[i];
            Assert.That((f.Width, f.Height, f.Channels), Is.EqualTo(((int)frames.Shape[2], (int)frames.Shape[1], 3)));
            Assert.That(f.Pixels, Is.EqualTo(want.AsSpan(i * per, per).ToArray()), $"frame {i}");
        }
        // As a still image, an animated GIF is its first frame (as Pillow's Image.open).
        Assert.That(ImageFile.Read(File("decode_anim.gif"), 3).Pixels, Is.EqualTo(want.AsSpan(0, per).ToArray()));
    }

    /// <summary>
    /// The GIF's frames encoded losslessly by ffmpeg (FFV1) must come back exactly through FFMpegCore where ffmpeg is
    /// installed; where it is not, the error must name the Debian package.
    /// </summary>
    [Test]
    public void Video_file_is_read_through_ffmpeg_or_names_its_package()
    {
        string path = File("decode_anim.mkv");
        bool installed = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => System.IO.File.Exists(Path.Combine(d, "ffmpeg")));
        if (!installed)
        {
            var missing = Assert.Throws<ArgumentException>(() => RequestFiles.Video(path))!;
            Assert.That(missing.Message, Does.Contain($"install Debian's {VideoFile.DebianPackage} package"));
            return;
        }
        var frames = NpyFile.Read(File("decode_anim_frames.npy"));
        var want = MemoryMarshal.Cast<sbyte, byte>((sbyte[])frames.Data).ToArray();
        Assert.That(RequestFiles.DetectFile(path), Is.EqualTo(OmniKernels.Model.Modality.Video));
        var video = RequestFiles.Video(path);
        Assert.That(video.Decoded, Has.Count.EqualTo(frames.Shape[0]));
        Assert.That(video.Decoded!.SelectMany(f => f.Pixels).ToArray(), Is.EqualTo(want));
    }

    [Test]
    public void Missing_ffmpeg_is_named_with_its_Debian_package()
    {
        string? path = Environment.GetEnvironmentVariable("PATH");
        try
        {
            Environment.SetEnvironmentVariable("PATH", "/nonexistent");
            var ex = Assert.Throws<ImageFormatException>(() => VideoFile.ReadFrames(File("decode_anim.mkv")))!;
            TestContext.Out.WriteLine(ex.Message);
            Assert.That(ex.Message, Does.Contain("needs ffprobe, which is not on PATH; install Debian's ffmpeg package (apt-get install ffmpeg)"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }

    /// <summary>Each hostile file, and the distinct reason it must be refused for.</summary>
    public static IEnumerable<TestCaseData> Hostile()
    {
        yield return new TestCaseData("hostile_truncated.png", "truncated PNG: the data ends before the image does");
        yield return new TestCaseData("hostile_truncated.jpg", "truncated JPEG: the data ends before the image does");
        yield return new TestCaseData("hostile_wrong_magic.png", "not an image in a supported format (unrecognised signature");
        yield return new TestCaseData("hostile_huge_dims.png", "PNG header claims 100000×100000 pixels, over the limit of 16384 per side");
        yield return new TestCaseData("hostile_bomb.png", "PNG header claims 12000×12000 = 144000000 pixels, over the limit of 67108864 pixels");
        yield return new TestCaseData("hostile_image.bmp", "unsupported image format BMP (disabled");
        yield return new TestCaseData("hostile_image.tiff", "unsupported image format TIFF (disabled");
    }

    [TestCaseSource(nameof(Hostile))]
    public void Hostile_image_is_refused_for_its_reason(string file, string reason)
    {
        string path = File(file);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Read(path, 3))!;
        TestContext.Out.WriteLine(ex.Message);
        Assert.That(ex.Message, Does.StartWith(path + ": "));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Test]
    public void Gif_with_thousands_of_frames_is_refused_as_a_video()
    {
        string path = File("hostile_frames.gif");
        var ex = Assert.Throws<ArgumentException>(() => RequestFiles.Video(path))!;
        TestContext.Out.WriteLine(ex.Message);
        Assert.That(ex.Message, Does.Contain($"GIF has more than {ImageLimits.MaxGifFrames} frames of 2×2"));
        // As a still image it is its first frame.
        Assert.That(ImageFile.Read(path, 3).Pixels, Is.EqualTo(new byte[12]));
    }

    /// <summary>
    /// The bomb (144 M pixels, 576 MB as RGBA) and the 3000-frame GIF, decoded 20 times each: the process's
    /// working set may grow by at most 64 MiB, i.e. no decode allocated the pixels the headers claim.
    /// </summary>
    [Test]
    public void Memory_stays_bounded_while_refusing_bombs()
    {
        string bomb = File("hostile_bomb.png"), frames = File("hostile_frames.gif");
        Assert.Throws<ImageFormatException>(() => ImageFile.Read(bomb, 3)); // warm up: load types, JIT
        Assert.Throws<ImageFormatException>(() => ImageFile.ReadFrames(frames, 3));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long before = process.WorkingSet64, peak = before;
        for (int i = 0; i < 20; i++)
        {
            Assert.Throws<ImageFormatException>(() => ImageFile.Read(bomb, 3));
            Assert.Throws<ImageFormatException>(() => ImageFile.ReadFrames(frames, 3));
            process.Refresh();
            peak = Math.Max(peak, process.WorkingSet64);
        }
        long growth = peak - before;
        TestContext.Out.WriteLine($"working set {before >> 20} MiB, peak growth {growth >> 20} MiB");
        Assert.That(growth, Is.LessThan(64L << 20));
    }
}
