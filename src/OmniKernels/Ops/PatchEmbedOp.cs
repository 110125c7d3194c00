using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>Conv2d (kernel = stride = patch) as a GEMM over patches, plus bias, class token and positions.</summary>
internal sealed class PatchEmbedOp : OpDefinition
{
    public override string Name => "patch-embed";
    public override string Summary => "tokens = [cls; conv2d(image, weight, stride=P) + bias] + pos; image [B,C,H,W], weight [D,C,P,P] -> [B, (1+)N, D]";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("image", true, "float32 [B, C, H, W]"),
        new("weight", true, "float32 [D, C, P, P] (PyTorch Conv2d layout)"),
        new("bias", false, "float32 [D]"),
        new("cls", false, "float32 [D]: class token, prepended as token 0"),
        new("pos", false, "float32 [T, D]: position embeddings, T = N (+1 with cls)"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = [];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var image = inputs["image"];
        var weight = inputs["weight"];
        RequireRank(image, "image", 4);
        RequireRank(weight, "weight", 4);
        image.Floats("image");
        weight.Floats("weight");
        long b = image.Shape[0], c = image.Shape[1], h = image.Shape[2], w = image.Shape[3];
        long d = weight.Shape[0], patch = weight.Shape[2];
        if (weight.Shape[1] != c || weight.Shape[3] != patch)
            throw new OpInputException($"patch-embed: weight {weight.ShapeText} must be [D, {c}, P, P] for image {image.ShapeText}");
        if (h < patch || w < patch)
            throw new OpInputException($"patch-embed: image {image.ShapeText} is smaller than one {patch}×{patch} patch");
        long n = h / patch * (w / patch);
        inputs.TryGetValue("bias", out var bias);
        inputs.TryGetValue("cls", out var cls);
        inputs.TryGetValue("pos", out var pos);
        long t = n + (cls is null ? 0 : 1);
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != d)) throw new OpInputException($"patch-embed: bias {bias.ShapeText} must be ({d},)");
        if (cls is not null && (cls.Rank != 1 || cls.Shape[0] != d)) throw new OpInputException($"patch-embed: cls {cls.ShapeText} must be ({d},)");
        if (pos is not null && (pos.Rank != 2 || pos.Shape[0] != t || pos.Shape[1] != d))
            throw new OpInputException($"patch-embed: pos {pos.ShapeText} must be ({t}, {d}): {n} patches{(cls is null ? "" : " + the class token")}");
        bias?.Floats("bias");
        cls?.Floats("cls");
        pos?.Floats("pos");
        return new Bound(image, weight, bias, cls, pos, (int)b, (int)c, (int)h, (int)w, (int)patch, (int)d, t);
    }

    private sealed class Bound(HostTensor image, HostTensor weight, HostTensor? bias, HostTensor? cls, HostTensor? pos,
        int batch, int channels, int height, int width, int patch, int dim, long tokens) : BoundOp
    {
        public override long[] OutputShape => [batch, tokens, dim];
        public override double Flops => 2.0 * batch * (height / patch) * (width / patch) * dim * channels * patch * patch;

        public override float[] RunDevice(DeviceContext ctx)
        {
            const int align = GemmKernel.PanelWidth;
            using var grid = PatchGrid.Create(ctx, channels, height, width, patch);
            using var ti = DeviceIO.Upload(ctx, image, "image");
            using var tw = Tensor.FromHost<float>(ctx, weight.Floats("weight"), new Shape(dim, (long)channels * patch * patch));
            using var packed = PackedMatrix.Pack(ctx, tw.View, transposed: true);
            using var tb = bias is null ? null : DeviceIO.Upload(ctx, bias, "bias", align);
            using var tc = cls is null ? null : DeviceIO.Upload(ctx, cls, "cls");
            using var tp = pos is null ? null : DeviceIO.Upload(ctx, pos, "pos", align);
            using var y = DeviceIO.PoisonedOutput(ctx, OutputShape, align);
            PatchEmbedKernel.Launch(ctx, ti.View, grid, packed.View, y.View, tb?.View, tc?.View, tp?.View);
            return DeviceIO.Download(ctx, y);
        }

        public override double[] RunReference()
        {
            var y = new double[batch * tokens * dim];
            ReferenceOps.PatchEmbed(image.Floats("image"), batch, channels, height, width, patch, weight.Floats("weight"), dim,
                bias?.Floats("bias") ?? default, cls?.Floats("cls") ?? default, pos?.Floats("pos") ?? default, y);
            return y;
        }
    }
}
