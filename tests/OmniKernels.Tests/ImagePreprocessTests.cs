using System.Runtime.InteropServices;
using NUnit.Framework;
using OmniKernels.Images;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Tests;

/// <summary>
/// Vectors from tools/make_image_vectors.py (Pillow 9.4 + NumPy). The test project copies only vectors/*.npy,
/// so each image file is stored as its raw bytes in an int8 .npy and written to a temporary file here.
/// </summary>
internal static class ImageVectors
{
    public static string Path(string name) =>
        System.IO.Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"image_{name}.npy");

    /// <summary>An int8 .npy holding uint8 data, as bytes.</summary>
    public static byte[] Bytes(string name)
    {
        var a = NpyFile.Read(Path(name));
        Assert.That(a.DType, Is.EqualTo(NpyDType.Int8), name);
        return MemoryMarshal.Cast<sbyte, byte>((sbyte[])a.Data).ToArray();
    }

    /// <summary>Pillow's decoded pixels, [H, W, C].</summary>
    public static DecodedImage Pixels(string name)
    {
        var a = NpyFile.Read(Path(name));
        Assert.That(a.Shape, Has.Count.EqualTo(3), name);
        return new DecodedImage(MemoryMarshal.Cast<sbyte, byte>((sbyte[])a.Data).ToArray(), (int)a.Shape[1], (int)a.Shape[0], (int)a.Shape[2]);
    }
}

[TestFixture]
public sealed class ImageFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "imagetest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string Write(string fileName, byte[] bytes)
    {
        string path = Path.Combine(_dir, fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string WriteVector(string name, string extension) => Write(name + extension, ImageVectors.Bytes(name + "_file"));

    /// <summary>
    /// Name, extension, the channel count the decoder gives natively (alpha only where some pixel is not opaque:
    /// the GIF has no transparent index), and whether the format is lossless.
    /// </summary>
    public static IEnumerable<TestCaseData> Formats()
    {
        yield return new TestCaseData("rgb61x47_png", ".png", 3, true);
        yield return new TestCaseData("gray33x50_png", ".png", 1, true);
        yield return new TestCaseData("rgba20x15_png", ".png", 4, true);
        yield return new TestCaseData("la14x9_png", ".png", 2, true);
        yield return new TestCaseData("pal19x13_gif", ".gif", 3, true);
        yield return new TestCaseData("gradient80x120_jpg", ".jpg", 3, false);
    }

    /// <summary>
    /// JPEG: ImageSharp's IDCT and chroma upsampling are not libjpeg-turbo's. On the 80×120 gradient (quality 90,
    /// 4:2:0) the largest difference measured was 4 levels (mean 0.44); allowed: 5, mean 1.
    /// </summary>
    private const int JpegMaxLevels = 5;

    [TestCaseSource(nameof(Formats))]
    public void Decodes_like_Pillow(string name, string extension, int nativeChannels, bool lossless)
    {
        string path = WriteVector(name, extension);
        using (var stream = File.OpenRead(path))
        {
            var native = ImageSharpDecoder.Instance.Decode(stream, path);
            Assert.That(native.Channels, Is.EqualTo(nativeChannels));
        }
        foreach (var (channels, mode) in new[] { (1, "l"), (3, "rgb"), (4, "rgba") })
        {
            var got = ImageFile.Read(path, channels);
            var expected = ImageVectors.Pixels($"{name}_{mode}");
            Assert.That((got.Width, got.Height, got.Channels), Is.EqualTo((expected.Width, expected.Height, expected.Channels)), $"{name} as {mode}");
            if (lossless)
            {
                Assert.That(got.Pixels, Is.EqualTo(expected.Pixels), $"{name} as {mode}");
                continue;
            }
            int max = 0;
            long sum = 0;
            for (int i = 0; i < got.Pixels.Length; i++)
            {
                int d = Math.Abs(got.Pixels[i] - expected.Pixels[i]);
                max = Math.Max(max, d);
                sum += d;
            }
            double mean = (double)sum / got.Pixels.Length;
            TestContext.Out.WriteLine($"{name} as {mode}: max |ImageSharp − Pillow| = {max} levels, mean {mean:F3}");
            Assert.That(max, Is.LessThanOrEqualTo(JpegMaxLevels), $"{name} as {mode}");
            Assert.That(mean, Is.LessThanOrEqualTo(1.0), $"{name} as {mode}");
        }
    }

    [Test]
    public void Decodes_from_a_non_seekable_stream_and_from_the_current_position()
    {
        var bytes = ImageVectors.Bytes("rgb61x47_png_file");
        var expected = ImageVectors.Pixels("rgb61x47_png_rgb");
        using (var pipe = new NonSeekable(new MemoryStream(bytes)))
            Assert.That(ImageSharpDecoder.Instance.Decode(pipe, "pipe").Pixels, Is.EqualTo(expected.Pixels));
        var prefixed = new byte[7 + bytes.Length];
        bytes.CopyTo(prefixed, 7);
        using var ms = new MemoryStream(prefixed) { Position = 7 };
        Assert.That(ImageSharpDecoder.Instance.Decode(ms, "prefixed").Pixels, Is.EqualTo(expected.Pixels));
    }

    [Test]
    public void Converts_channels_like_Pillow()
    {
        var rgb = new DecodedImage([10, 200, 30, 255, 255, 255], 2, 1, 3);
        // Pillow: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
        Assert.That(ImageFile.ConvertChannels(rgb, 1).Pixels, Is.EqualTo(new byte[] { 124, 255 }));
        Assert.That(ImageFile.ConvertChannels(rgb, 4).Pixels, Is.EqualTo(new byte[] { 10, 200, 30, 255, 255, 255, 255, 255 }));
        var la = new DecodedImage([7, 9], 1, 1, 2);
        Assert.That(ImageFile.ConvertChannels(la, 4).Pixels, Is.EqualTo(new byte[] { 7, 7, 7, 9 }));
        // Dropping alpha composites on white (Pillow's alpha_composite; the la/rgba vectors check every level).
        Assert.That(ImageFile.ConvertChannels(new DecodedImage([7, 0, 7, 255], 2, 1, 2), 3).Pixels, Is.EqualTo(new byte[] { 255, 255, 255, 7, 7, 7 }));
        Assert.That(ImageFile.ConvertChannels(rgb, 3), Is.SameAs(rgb));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFile.Read(Path.Combine(_dir, "x.png"), 2));
    }

    private static ImageFormatException Fails(string path, int channels = 3)
    {
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Read(path, channels))!;
        TestContext.Out.WriteLine(ex.Message);
        Assert.That(ex.Message, Does.StartWith(path + ": "));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        return ex;
    }

    [Test]
    public void Missing_file() => Assert.That(Fails(Path.Combine(_dir, "nope.png")).Message, Does.Contain("file not found"));

    [Test]
    public void Empty_file() => Assert.That(Fails(Write("empty.png", [])).Message, Does.Contain("empty"));

    [Test]
    public void Truncated_jpeg() => Assert.That(Fails(WriteVector("truncated_jpg", ".jpg")).Message, Does.Contain("truncated JPEG"));

    [Test]
    public void Truncated_png_and_gif()
    {
        foreach (var (name, ext, format) in new[] { ("rgb61x47_png", ".png", "PNG"), ("pal19x13_gif", ".gif", "GIF") })
        {
            var bytes = ImageVectors.Bytes(name + "_file");
            // Cutting only what follows the pixels (GIF's trailer) leaves a whole image, which decodes; 30 bytes
            // reach into the pixel data of each of these files.
            foreach (int keep in new[] { bytes.Length * 2 / 3, bytes.Length - 30 })
            {
                var ex = Fails(Write($"cut{keep}{ext}", bytes[..keep]));
                Assert.That(ex.Message, Does.Contain($"truncated {format}").Or.Contain($"corrupt {format}"), $"{name} cut to {keep} bytes");
            }
            Assert.That(Fails(Write($"header{ext}", bytes[..9])).Message, Does.Contain("truncated").Or.Contain("not an image"));
        }
    }

    [Test]
    public void Corrupt_png()
    {
        var bytes = ImageVectors.Bytes("rgb61x47_png_file");
        int idat = bytes.AsSpan().IndexOf("IDAT"u8);
        bytes[idat + 4] = 0x12; // the zlib header's compression method is no longer deflate
        Assert.That(Fails(Write("corrupt.png", bytes)).Message, Does.Contain("corrupt PNG"));
    }

    [Test]
    public void Unsupported_format()
    {
        Assert.That(Fails(Write("notes.png", "hello, this is text"u8.ToArray())).Message, Does.Contain("supported: PNG, JPEG, GIF, WebP"));
        Assert.That(Fails(Write("layers.psd", "8BPS\0\u0001\0\0\0\0\0\0\0\u0003"u8.ToArray())).Message, Does.Contain("PSD"));
        // Formats StbImageSharp read, not enabled in the ImageSharp configuration: BMP by name, TGA (no signature) as unrecognised.
        Assert.That(Fails(WriteVector("rgb23x17_bmp", ".bmp")).Message, Does.Contain("unsupported image format BMP"));
        Assert.That(Fails(WriteVector("rgb21x11_tga", ".tga")).Message, Does.Contain("unrecognised signature"));
    }

    [TestCase("huge_png", ".png", "PNG")]
    public void Absurd_header_fails_fast_without_allocating(string name, string extension, string format)
    {
        string path = WriteVector(name, extension);
        Fails(path); // warm up: load types, JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Read(path, 3))!;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(ex.Message, Does.Contain($"{format} header claims 100000×100000 pixels"));
        Assert.That(allocated, Is.LessThan(16L << 20), $"allocated {allocated} bytes");
    }

    [Test]
    public void Limits_are_checked_per_side_and_in_total()
    {
        Assert.DoesNotThrow(() => ImageLimits.Check("x", "PNG", 8192, 8192));
        Assert.DoesNotThrow(() => ImageLimits.Check("x", "PNG", 16384, 4096));
        Assert.That(Assert.Throws<ImageFormatException>(() => ImageLimits.Check("x", "PNG", 16385, 1))!.Message, Does.Contain("per side"));
        Assert.That(Assert.Throws<ImageFormatException>(() => ImageLimits.Check("x", "PNG", 16384, 16384))!.Message, Does.Contain("decompression bomb"));
        Assert.Throws<ImageFormatException>(() => ImageLimits.Check("x", "PNG", 0, 5));
    }

    /// <summary>A stream that cannot seek, like a pipe.</summary>
    private sealed class NonSeekable(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 5));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// Device preprocessing against Pillow 9.4 + NumPy (HF CLIPImageProcessor's steps, and torchvision's crop
/// rounding), on every backend: bit-exact (the 8-bit resize is Pillow's integer arithmetic and the
/// normalisation a table of the same float32 operations).
/// </summary>
[TestFixture]
public sealed class ImagePreprocessTests
{
    private static readonly float[] GrayMean = [0.5f], GrayStd = [0.25f];

    private static readonly (string Name, int Size, int Crop)[] Configs = [("s24c24", 24, 24), ("s32c28", 32, 28), ("s64c60", 64, 60)];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (string backend in Backends.Names)
            foreach (string image in new[] { "rgb61x47", "gradient80x120", "gray33x50" })
                foreach (var (cfg, size, crop) in Configs)
                {
                    if (cfg == "s64c60" && image == "gradient80x120") continue;
                    foreach (var filter in new[] { ResizeFilter.Bicubic, ResizeFilter.Bilinear })
                        foreach (var rounding in new[] { CenterCropRounding.HuggingFace, CenterCropRounding.Torchvision })
                            yield return new TestCaseData(backend, image, cfg, size, crop, filter, rounding)
                                .SetName($"{backend}_{image}_{cfg}_{filter}_{rounding}");
                }
        // The conventions' crop offsets differ on both axes here (tools/make_image_vectors.py, BOTH_AXES).
        foreach (string backend in Backends.Names)
            foreach (var (image, cfg, size, crop) in BothAxes)
                foreach (var filter in new[] { ResizeFilter.Bicubic, ResizeFilter.Bilinear })
                    foreach (var rounding in new[] { CenterCropRounding.HuggingFace, CenterCropRounding.Torchvision })
                        yield return new TestCaseData(backend, image, cfg, size, crop, filter, rounding)
                            .SetName($"{backend}_{image}_{cfg}_{filter}_{rounding}_both_axes");
    }

    private static readonly (string Image, string Name, int Size, int Crop)[] BothAxes = [("rgb61x47", "s28c25", 28, 25), ("gray33x50", "s24c21", 24, 21)];

    private static DecodedImage Input(string image) => ImageVectors.Pixels(image switch
    {
        "rgb61x47" => "rgb61x47_png_rgb",
        "gradient80x120" => "gradient80x120_jpg_rgb",
        _ => "gray33x50_png_l",
    });

    [TestCaseSource(nameof(Cases))]
    public void Matches_Pillow_and_NumPy(string backend, string image, string cfg, int size, int crop, ResizeFilter filter, CenterCropRounding rounding)
    {
        var ctx = Backends.Get(backend);
        var pixels = Input(image);
        bool gray = pixels.Channels == 1;
        var options = new ImagePreprocessOptions(size, crop, filter,
            gray ? GrayMean : [.. ClipPreset.Mean], gray ? GrayStd : [.. ClipPreset.Std], rounding);
        string tag = rounding == CenterCropRounding.HuggingFace ? "hf" : "tv";
        var expected = NpyFile.Read(ImageVectors.Path($"{image}_{cfg}_{filter.ToString().ToLowerInvariant()}_{tag}"));
        using var pre = ImagePreprocessor.Create(ctx, options);
        using var output = pre.Run(pixels);
        Assert.That(output.Shape, Is.EqualTo(new Shape(pixels.Channels, crop, crop)));
        Assert.That(expected.Shape, Is.EqualTo(new long[] { pixels.Channels, crop, crop }));
        var got = output.ToArray<float>();
        var want = (float[])expected.Data;
        int mismatches = 0;
        float worst = 0;
        for (int i = 0; i < want.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want[i])) mismatches++;
            worst = Math.Max(worst, Math.Abs(got[i] - want[i]));
        }
        Assert.That(mismatches, Is.Zero, $"{mismatches} of {want.Length} values differ from Pillow/NumPy; max |diff| {worst}");
    }

    [TestCaseSource(typeof(Backends), nameof(Backends.Names))]
    public void Reads_a_png_and_preprocesses_it_end_to_end(string backend)
    {
        var ctx = Backends.Get(backend);
        string path = Path.Combine(Path.GetTempPath(), $"imagetest-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, ImageVectors.Bytes("rgb61x47_png_file"));
        try
        {
            var image = ImageFile.Read(path, 3);
            using var pre = ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(32, 28, ResizeFilter.Bicubic, [.. ClipPreset.Mean], [.. ClipPreset.Std]));
            var got = pre.RunToHost(image);
            Assert.That(got, Is.EqualTo((float[])NpyFile.Read(ImageVectors.Path("rgb61x47_s32c28_bicubic_tv")).Data));
            // A preallocated slot of a batch, written in place.
            using var batch = Tensor.Allocate(ctx, DType.F32, new Shape(2, 3, 28, 28));
            var v = batch.View;
            var slot = new TensorView(v.Storage, DType.F32, new Shape(3, 28, 28), new Shape(28 * 28, 28, 1), v.Offset + 3 * 28 * 28);
            ElementwiseKernel.Fill(ctx, v, float.NaN);
            pre.Run(image, slot);
            var all = batch.ToArray<float>();
            Assert.That(all.AsSpan(0, 3 * 28 * 28).ToArray(), Has.All.NaN);
            Assert.That(all.AsSpan(3 * 28 * 28).ToArray(), Is.EqualTo(got));
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static IEnumerable<string> Devices() => Backends.Devices();

    [TestCaseSource(nameof(Devices))]
    public void Launches_allocate_nothing(string backend)
    {
        var ctx = Backends.Get(backend);
        var image = Input("rgb61x47");
        var plan = ResamplePlan.Create(61, 47, 31, 24, 3, 0, 24, 24, ResizeFilter.Bicubic);
        using var pixels = Tensor.FromHost<sbyte>(ctx, MemoryMarshal.Cast<byte, sbyte>(image.Pixels.AsSpan()), new Shape(47, 61, 3));
        using var table = Tensor.FromHost<int>(ctx, plan.Table, plan.TableShape);
        using var rows = Tensor.Allocate(ctx, DType.I32, plan.IntermediateShape(3));
        using var levels = Tensor.FromHost<float>(ctx, ImagePreprocessKernel.NormalizationTable([.. ClipPreset.Mean], [.. ClipPreset.Std]), new Shape(3, 256));
        using var output = Tensor.Allocate(ctx, DType.F32, new Shape(3, 24, 24));
        ImagePreprocessKernel.Launch(ctx, pixels.View, plan, table.View, rows.View, levels.View, output.View);
        ctx.Synchronize();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) ImagePreprocessKernel.Launch(ctx, pixels.View, plan, table.View, rows.View, levels.View, output.View);
        long after = GC.GetAllocatedBytesForCurrentThread();
        ctx.Synchronize();
        Assert.That(after - before, Is.Zero, "managed bytes allocated by 100 launches");
        // 61×47 → 31×24, crop 24 at left 3 (torchvision: round(3.5) = 4; HF: 3): this is HF's crop.
        Assert.That(output.ToArray<float>(), Is.EqualTo((float[])NpyFile.Read(ImageVectors.Path("rgb61x47_s24c24_bicubic_hf")).Data));
    }

    [Test]
    public void Resized_size_truncates_the_longer_side()
    {
        Assert.That(ImagePreprocessor.ResizedSize(61, 47, 24), Is.EqualTo((31, 24))); // 24·61/47 = 31.15
        Assert.That(ImagePreprocessor.ResizedSize(80, 120, 32), Is.EqualTo((32, 48)));
        Assert.That(ImagePreprocessor.ResizedSize(640, 480, 224), Is.EqualTo((298, 224))); // 298.67
        Assert.That(ImagePreprocessor.ResizedSize(50, 50, 7), Is.EqualTo((7, 7)));
    }

    [Test]
    public void Crop_offsets_round_like_torchvision_or_floor_like_HF()
    {
        // excess 0..7: torchvision rounds half to even, HF floors; they differ at 3 and 7.
        int[] tv = [0, 0, 1, 2, 2, 2, 3, 4], hf = [0, 0, 1, 1, 2, 2, 3, 3];
        for (int excess = 0; excess < 8; excess++)
        {
            Assert.That(ImagePreprocessor.CropOffset(24 + excess, 24, CenterCropRounding.Torchvision), Is.EqualTo(tv[excess]), $"excess {excess}");
            Assert.That(ImagePreprocessor.CropOffset(24 + excess, 24, CenterCropRounding.HuggingFace), Is.EqualTo(hf[excess]), $"excess {excess}");
        }
    }

    [Test]
    public void Clip_preset()
    {
        var o = ClipPreset.Options();
        Assert.That((o.Size, o.Crop, o.Filter), Is.EqualTo((224, 224, ResizeFilter.Bicubic)));
        Assert.That(o.Mean, Is.EqualTo(new[] { 0.48145466f, 0.4578275f, 0.40821073f }));
        Assert.That(o.Std, Is.EqualTo(new[] { 0.26862954f, 0.26130258f, 0.27577711f }));
        Assert.That(o.Mean, Is.Not.SameAs(ClipPreset.Options().Mean));
    }

    [Test]
    public void Rejects_bad_options_and_images()
    {
        var ctx = Backends.All[0];
        Assert.Throws<ArgumentException>(() => ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(24, 25)));
        Assert.Throws<ArgumentException>(() => ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(0, 0)));
        Assert.Throws<ArgumentException>(() => ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(24, 24, Mean: [0.5f], Std: [0.5f, 0.5f])));
        Assert.Throws<ArgumentException>(() => ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(24, 24, Mean: [0.5f], Std: [0f])));
        Assert.Throws<ArgumentException>(() => ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(24, 24, Mean: [0.5f])));
        using var pre = ImagePreprocessor.Create(ctx, ClipPreset.Options());
        Assert.That(pre.Channels, Is.EqualTo(3));
        Assert.Throws<ArgumentException>(() => pre.Run(new DecodedImage(new byte[4], 2, 2, 1)));
        Assert.Throws<ArgumentException>(() => pre.Run(new DecodedImage(new byte[11], 2, 2, 3)));
    }

    [Test]
    public void Without_mean_and_std_it_only_rescales()
    {
        var ctx = Backends.All[0];
        using var pre = ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(2, 2));
        Assert.That(pre.Channels, Is.Null);
        var got = pre.RunToHost(new DecodedImage([0, 51, 102, 255], 2, 2, 1));
        Assert.That(got, Is.EqualTo(new[] { 0f, 0.2f, 0.4f, 1f }));
    }
}
