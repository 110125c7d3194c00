using System.Runtime.InteropServices;
using OmniKernels.Kernels;

namespace OmniKernels.Images;

/// <summary>How the centre crop's offset is rounded when the excess (resized side − crop) is odd.</summary>
public enum CenterCropRounding
{
    /// <summary>torchvision's <c>center_crop</c>: top = int(round((h − crop) / 2.0)), Python's round half to even.</summary>
    Torchvision,
    /// <summary>HF transformers' <c>center_crop</c> (CLIPImageProcessor): top = (h − crop) // 2.</summary>
    HuggingFace,
}

/// <summary>Options of <see cref="ImagePreprocessor"/>.</summary>
/// <param name="Size">The shorter side after resizing (HF's <c>shortest_edge</c>).</param>
/// <param name="Crop">Side of the square centre crop; 1 ≤ Crop ≤ Size.</param>
/// <param name="Filter">Pillow's resampling filter.</param>
/// <param name="Mean">Per-channel mean, subtracted after rescaling to [0, 1]; its length (1 to 4) is the channel
/// count images must have. Null: 0 for every channel, and any channel count is accepted.</param>
/// <param name="Std">Per-channel standard deviation, the divisor; same length as <paramref name="Mean"/>. Null: 1.</param>
/// <param name="CropRounding">The centre crop's rounding (the two conventions differ when the excess is 3 mod 4).</param>
public sealed record ImagePreprocessOptions(int Size, int Crop, ResizeFilter Filter = ResizeFilter.Bicubic,
    float[]? Mean = null, float[]? Std = null, CenterCropRounding CropRounding = CenterCropRounding.Torchvision);

/// <summary>CLIP's image preprocessing (OpenAI CLIP ViT-B/32 and HF CLIPImageProcessor): 224, bicubic, CLIP's mean and std.</summary>
public static class ClipPreset
{
    /// <summary>Resize target of the shorter side.</summary>
    public const int Size = 224;

    /// <summary>Side of the centre crop.</summary>
    public const int Crop = 224;

    /// <summary>Per-channel mean (R, G, B).</summary>
    public static IReadOnlyList<float> Mean { get; } = [0.48145466f, 0.4578275f, 0.40821073f];

    /// <summary>Per-channel standard deviation (R, G, B).</summary>
    public static IReadOnlyList<float> Std { get; } = [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>Fresh options (own copies of the arrays), with the given centre-crop rounding.</summary>
    public static ImagePreprocessOptions Options(CenterCropRounding rounding = CenterCropRounding.Torchvision) =>
        new(Size, Crop, ResizeFilter.Bicubic, [.. Mean], [.. Std], rounding);
}

/// <summary>
/// Resize so that the shorter side is <see cref="ImagePreprocessOptions.Size"/>, centre crop to
/// Crop × Crop, rescale by 1/255 and normalise per channel, on the device; the output is float32 [C, Crop, Crop].
/// Matches Pillow 9.4 + HF CLIPImageProcessor / torchvision (resize, center_crop, to_tensor or rescale, normalize)
/// bit for bit: Pillow's resize of 8-bit images (antialiased, fixed-point, rounded to 8 bits after the
/// horizontal and again after the vertical pass) is reproduced exactly (<see cref="ImagePreprocessKernel"/>).
/// Images must have the options' channel count (convert RGBA and gray with <see cref="ImageFile.ConvertChannels"/>,
/// as HF's convert_rgb does); a 4-channel image is resized channel by channel, whereas Pillow resizes RGBA with
/// premultiplied alpha. Create once and reuse; not thread-safe (one device stream).
/// </summary>
public sealed class ImagePreprocessor : IDisposable
{
    private readonly DeviceContext _ctx;
    private readonly Tensor _levels;
    private readonly int _levelRows;
    private bool _disposed;

    private ImagePreprocessor(DeviceContext ctx, ImagePreprocessOptions options, Tensor levels, int levelRows, int? channels)
    {
        _ctx = ctx;
        Options = options;
        _levels = levels;
        _levelRows = levelRows;
        Channels = channels;
    }

    /// <summary>The options (mean and std as given; the preprocessor keeps its own copies).</summary>
    public ImagePreprocessOptions Options { get; }

    /// <summary>The channel count images must have, or null when any (1 to 4) is accepted (no mean/std given).</summary>
    public int? Channels { get; }

    /// <summary>Validates the options and uploads the normalisation table.</summary>
    /// <exception cref="ArgumentException">The sizes, mean or std are invalid.</exception>
    public static ImagePreprocessor Create(DeviceContext ctx, ImagePreprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Size < 1 || options.Size > ImageLimits.MaxDimension)
            throw new ArgumentException($"size {options.Size} must be in 1..{ImageLimits.MaxDimension}");
        if (options.Crop < 1 || options.Crop > options.Size)
            throw new ArgumentException($"crop {options.Crop} must be in 1..size ({options.Size}); a crop larger than the resized image (padding) is not supported");
        if (options.Filter is not (ResizeFilter.Bicubic or ResizeFilter.Bilinear))
            throw new ArgumentException($"unknown resize filter {options.Filter}");
        if (options.CropRounding is not (CenterCropRounding.Torchvision or CenterCropRounding.HuggingFace))
            throw new ArgumentException($"unknown crop rounding {options.CropRounding}");
        if ((options.Mean is null) != (options.Std is null))
            throw new ArgumentException("give both mean and std, or neither");
        int? channels = options.Mean?.Length;
        if (channels is { } c && (c is < 1 or > 4 || options.Std!.Length != c))
            throw new ArgumentException($"mean has {c} entries and std {options.Std!.Length}; both need one per channel (1 to 4)");
        float[] mean = options.Mean is null ? new float[4] : (float[])options.Mean.Clone();
        float[] std = options.Std is null ? [1f, 1f, 1f, 1f] : (float[])options.Std.Clone();
        var table = ImagePreprocessKernel.NormalizationTable(mean, std);
        var levels = Tensor.FromHost<float>(ctx, table, new Shape(mean.Length, ImagePreprocessKernel.LevelCount));
        return new ImagePreprocessor(ctx, options, levels, mean.Length, channels);
    }

    /// <summary>
    /// The resized size: the shorter side becomes <paramref name="size"/> and the longer int(size · long / short),
    /// truncated, computed in double as Python does (HF's get_resize_output_image_size with
    /// default_to_square=False and torchvision's resize agree on this).
    /// </summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int size)
    {
        if (width <= 0 || height <= 0 || size <= 0)
            throw new ArgumentException($"sizes must be positive: {width}×{height} to {size}");
        bool portrait = width <= height;
        long shortSide = portrait ? width : height, longSide = portrait ? height : width;
        double scaled = (double)((long)size * longSide) / shortSide;
        if (scaled >= int.MaxValue) throw new ArgumentException($"resizing {width}×{height} to a shorter side of {size} gives a longer side of {scaled:F0}, too large");
        int newLong = (int)scaled;
        return portrait ? (size, newLong) : (newLong, size);
    }

    /// <summary>The offset of a crop of <paramref name="crop"/> within a side of <paramref name="side"/> ≥ crop, by <paramref name="rounding"/>.</summary>
    public static int CropOffset(int side, int crop, CenterCropRounding rounding)
    {
        if (crop < 1 || crop > side) throw new ArgumentException($"crop {crop} must be in 1..{side}");
        int excess = side - crop;
        return rounding == CenterCropRounding.HuggingFace ? excess / 2 : (int)Math.Round(excess / 2.0, MidpointRounding.ToEven);
    }

    /// <summary>The resampling plan for an image of <paramref name="width"/> × <paramref name="height"/> under these options.</summary>
    public ResamplePlan Plan(int width, int height)
    {
        var (w, h) = ResizedSize(width, height, Options.Size);
        int crop = Options.Crop;
        return ResamplePlan.Create(width, height, w, h,
            CropOffset(w, crop, Options.CropRounding), CropOffset(h, crop, Options.CropRounding), crop, crop, Options.Filter);
    }

    /// <summary>The output shape for an image of <paramref name="channels"/> channels: [C, Crop, Crop].</summary>
    public Shape OutputShape(int channels) => new(channels, Options.Crop, Options.Crop);

    /// <summary>Preprocesses <paramref name="image"/> into a new float32 [C, Crop, Crop] tensor; the caller disposes it.</summary>
    /// <exception cref="ArgumentException">The image is malformed or has the wrong channel count.</exception>
    public Tensor Run(DecodedImage image)
    {
        int channels = CheckImage(image);
        var output = Tensor.Allocate(_ctx, DType.F32, OutputShape(channels));
        try
        {
            Run(image, output.View);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Preprocesses <paramref name="image"/> into <paramref name="output"/>, a dense F32 [C, Crop, Crop] view (for
    /// example one image of a batch). Uploads the pixels and the plan, launches both passes and waits for them.
    /// </summary>
    public void Run(DecodedImage image, TensorView output)
    {
        int channels = CheckImage(image);
        var plan = Plan(image.Width, image.Height);
        using var pixels = Tensor.FromHost<sbyte>(_ctx, MemoryMarshal.Cast<byte, sbyte>(image.Pixels.AsSpan()), new Shape(image.Height, image.Width, channels));
        using var table = Tensor.FromHost<int>(_ctx, plan.Table, plan.TableShape);
        using var rows = Tensor.Allocate(_ctx, DType.I32, plan.IntermediateShape(channels));
        var levels = _levels.View;
        var lv = new TensorView(levels.Storage, DType.F32, new Shape(channels, ImagePreprocessKernel.LevelCount), new Shape(ImagePreprocessKernel.LevelCount, 1), levels.Offset);
        ImagePreprocessKernel.Launch(_ctx, pixels.View, plan, table.View, rows.View, lv, output);
        // The temporaries go back to the pool below; wait until the device is done with them.
        _ctx.Synchronize();
    }

    /// <summary>Runs <see cref="Run(DecodedImage)"/> and copies the result to a new host array, [C, Crop, Crop] in C order.</summary>
    public float[] RunToHost(DecodedImage image)
    {
        using var output = Run(image);
        return output.ToArray<float>();
    }

    private int CheckImage(DecodedImage image)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(image);
        image.Validate();
        if (Channels is { } c && image.Channels != c)
            throw new ArgumentException($"image has {image.Channels} channels; these options (mean/std of {c}) need {c}: convert it first");
        if (image.Channels > _levelRows)
            throw new ArgumentException($"image has {image.Channels} channels; at most {_levelRows}");
        return image.Channels;
    }

    /// <summary>Returns the normalisation table to the pool. Idempotent.</summary>
    public void Dispose()
    {
        _disposed = true;
        _levels.Dispose();
    }
}
