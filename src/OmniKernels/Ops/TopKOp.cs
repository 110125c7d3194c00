using System.Globalization;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>Retrieval: the k index rows with the highest q·xᵢ per query (the cosine for L2-normalised rows), as int32 indices.</summary>
internal sealed class TopKOp : OpDefinition
{
    public override string Name => "topk";
    public override string Summary => "indices [Q,k] of the k rows of index [N,E] with the highest queries·indexᵀ, best first, ties to the lower index";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("index", true, "float32 [N, E], L2-normalised rows for cosine scores"),
        new("queries", true, "float32 [Q, E]"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = ["k=10"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var index = inputs["index"];
        var queries = inputs["queries"];
        RequireRank(index, "index", 2);
        RequireRank(queries, "queries", 2);
        index.Floats("index");
        queries.Floats("queries");
        var text = p.Text("k", "10");
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) || k < 1)
            throw new OpInputException($"--param k={text}: expected a positive integer");
        if (queries.Shape[1] != index.Shape[1])
            throw new OpInputException($"topk: queries {queries.ShapeText} have E = {queries.Shape[1]}; index {index.ShapeText} has E = {index.Shape[1]}");
        if (k > index.Shape[0]) throw new OpInputException($"topk: k = {k} exceeds the index's {index.Shape[0]} rows");
        return new Bound(index, queries, k);
    }

    private sealed class Bound(HostTensor index, HostTensor queries, int k) : BoundOp
    {
        private long Q => queries.Shape[0];
        private long N => index.Shape[0];

        public override long[] OutputShape => [Q, k];
        public override double Flops => 2.0 * Q * N * index.Shape[1] + Q * N * k;
        public override DType OutputType => DType.I32;

        public override float[] RunDevice(DeviceContext ctx) => RunDeviceIntegers(ctx).Select(v => (float)v).ToArray();

        public override int[] RunDeviceIntegers(DeviceContext ctx)
        {
            using var ti = DeviceIO.Upload(ctx, index, "index");
            using var packed = PackedMatrix.Pack(ctx, ti.View, transposed: true);
            using var tq = DeviceIO.Upload(ctx, queries, "queries");
            using var scores = Tensor.Allocate(ctx, DType.F32, new Shape(Q, N), GemmKernel.PanelWidth);
            // −1 marks an index the kernel failed to write.
            using var indices = Tensor.FromHost<int>(ctx, Enumerable.Repeat(-1, checked((int)(Q * k))).ToArray(), new Shape(Q, k));
            using var values = DeviceIO.PoisonedOutput(ctx, OutputShape);
            TopKKernel.Search(ctx, tq.View, packed.View, scores.View, k, indices.View, values.View);
            ctx.Synchronize();
            return indices.ToArray<int>();
        }

        public override double[] RunReference() => RunReferenceIntegers().Select(v => (double)v).ToArray();

        public override int[] RunReferenceIntegers()
        {
            var y = new int[Q * k];
            ReferenceOps.TopKDot(index.Floats("index"), queries.Floats("queries"), (int)index.Shape[1], k, y);
            return y;
        }
    }
}
