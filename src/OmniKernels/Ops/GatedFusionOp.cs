using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>
/// Gated fusion of modality embeddings (<see cref="GatedFusionKernel"/>): the sigmoid gate over
/// z [B, M, E], or the softmax gate over h [B, K] weighting candidates x [B, M, F]; fp32 or INT8
/// gate weights; only the modalities in <c>present</c> are read. The main output is the fused
/// vector (or, with output=gates, the gates); gates_out=FILE.npy writes the gates alongside.
/// </summary>
internal sealed class GatedFusionOp : OpDefinition
{
    public override string Name => "gated-fusion";
    public override string Summary =>
        "fused = Σ_m g_m ⊙ z_m with g = σ(w·z + bias) over the present modalities (gate=sigmoid), or Σ_m softmax_present(w·h + bias)_m·x_m (gate=softmax)";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("z", false, "float32 [B, M, E] modality embeddings (gate=sigmoid); absent modalities' rows are never read"),
        new("h", false, "float32 [B, K] gate input (gate=softmax)"),
        new("x", false, "float32 [B, M, F] candidates (gate=softmax); absent modalities' rows are never read"),
        new("w", true, "float32 gate weight, PyTorch Linear layout: [M·E, M·E] (sigmoid) or [M, K] (softmax)"),
        new("bias", true, "float32 [M·E] (sigmoid) or [M] (softmax)"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } =
        ["gate=sigmoid", "present=all (or indices: 0,2)", "weights=fp32", "output=fused", "gates_out=FILE.npy"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var gate = p.Text("gate", "sigmoid") switch
        {
            "sigmoid" => FusionGate.Sigmoid,
            "softmax" => FusionGate.Softmax,
            var g => throw new OpInputException($"--param gate={g}: expected sigmoid or softmax"),
        };
        var format = p.Text("weights", "fp32") switch
        {
            "fp32" => FusionWeightFormat.Fp32,
            "int8" => FusionWeightFormat.Int8,
            var f => throw new OpInputException($"--param weights={f}: expected fp32 or int8"),
        };
        bool gatesOut = p.Text("output", "fused") switch
        {
            "fused" => false,
            "gates" => true,
            var o => throw new OpInputException($"--param output={o}: expected fused or gates"),
        };
        string gatesFile = p.Text("gates_out", "");
        if (gatesOut && gatesFile.Length > 0) throw new OpInputException("--param gates_out is for output=fused; with output=gates the gates are --out");
        string presentText = p.Text("present", "all");

        var w = inputs["w"];
        var bias = inputs["bias"];
        RequireRank(w, "w", 2);
        RequireRank(bias, "bias", 1);
        w.Floats("w");
        bias.Floats("bias");
        if (format == FusionWeightFormat.Int8) Int8Validation.RequireFinite(w.Floats("w"), "w");

        HostTensor gateInput, candidates;
        int m;
        if (gate == FusionGate.Sigmoid)
        {
            if (!inputs.TryGetValue("z", out var z) || inputs.ContainsKey("h") || inputs.ContainsKey("x"))
                throw new OpInputException("gated-fusion gate=sigmoid takes z, w and bias (h and x are for gate=softmax)");
            RequireRank(z, "z", 3);
            z.Floats("z");
            m = (int)z.Shape[1];
            long n = z.Shape[1] * z.Shape[2];
            if (w.Shape[0] != n || w.Shape[1] != n)
                throw new OpInputException($"gated-fusion: w {w.ShapeText} must be ({n}, {n}) for z {z.ShapeText} (M·E = {n})");
            if (bias.Shape[0] != n) throw new OpInputException($"gated-fusion: bias {bias.ShapeText} must be ({n},)");
            gateInput = candidates = z;
        }
        else
        {
            if (!inputs.TryGetValue("h", out var h) || !inputs.TryGetValue("x", out var x) || inputs.ContainsKey("z"))
                throw new OpInputException("gated-fusion gate=softmax takes h, x, w and bias (z is for gate=sigmoid)");
            RequireRank(h, "h", 2);
            RequireRank(x, "x", 3);
            h.Floats("h");
            x.Floats("x");
            m = (int)x.Shape[1];
            if (x.Shape[0] != h.Shape[0]) throw new OpInputException($"gated-fusion: x {x.ShapeText} and h {h.ShapeText} differ in batch");
            if (w.Shape[0] != m || w.Shape[1] != h.Shape[1])
                throw new OpInputException($"gated-fusion: w {w.ShapeText} must be ({m}, {h.Shape[1]}) for x {x.ShapeText} and h {h.ShapeText}");
            if (bias.Shape[0] != m) throw new OpInputException($"gated-fusion: bias {bias.ShapeText} must be ({m},)");
            gateInput = h;
            candidates = x;
        }
        if (m > GatedFusionWeights.MaxModalities)
            throw new OpInputException($"gated-fusion: {m} modalities; at most {GatedFusionWeights.MaxModalities}");
        var present = ParsePresent(presentText, m);
        return new Bound(gate, format, gateInput, candidates, w, bias, present, gatesOut, gatesFile);
    }

    private static bool[] ParsePresent(string text, int modalities)
    {
        var present = new bool[modalities];
        if (text == "all")
        {
            Array.Fill(present, true);
            return present;
        }
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) || i >= modalities)
                throw new OpInputException($"--param present={text}: '{part}' is not a modality index 0..{modalities - 1}");
            present[i] = true;
        }
        if (!present.Contains(true)) throw new OpInputException($"--param present={text}: the present set is empty; name at least one modality");
        return present;
    }

    private sealed class Bound(FusionGate gate, FusionWeightFormat format, HostTensor u, HostTensor x, HostTensor w, HostTensor bias,
        bool[] present, bool gatesOut, string gatesFile) : BoundOp
    {
        private float[]? _gates;

        private int B => (int)x.Shape[0];
        private int M => (int)x.Shape[1];
        private int Width => (int)x.Shape[2];
        private long[] GateShape => gate == FusionGate.Sigmoid ? [B, M, Width] : [B, M];

        public override long[] OutputShape => gatesOut ? GateShape : [B, Width];

        public override double Flops
        {
            get
            {
                long mp = present.Count(v => v);
                return gate == FusionGate.Sigmoid
                    ? 2.0 * B * mp * Width * mp * Width + 2.0 * B * mp * Width
                    : 2.0 * B * M * u.Shape[1] + 2.0 * B * mp * Width;
            }
        }

        public override IReadOnlyList<(string Path, float[] Data, long[] Shape)> SideOutputs =>
            gatesFile.Length > 0 && _gates is not null ? [(gatesFile, _gates, GateShape)] : [];

        public override float[] RunDevice(DeviceContext ctx)
        {
            var p = GatedFusionParams.Of(Enumerable.Range(0, M).Where(i => present[i]).ToArray());
            using var weights = GatedFusionWeights.Create(ctx, gate, M, (int)w.Shape[1], w.Floats("w"), bias.Floats("bias"), format);
            long gateCols = gate == FusionGate.Sigmoid ? (long)M * Width : M;
            using var tx = Tensor.FromHost<float>(ctx, x.Floats("x"), new Shape(B, (long)M * Width));
            using var tu = gate == FusionGate.Softmax ? DeviceIO.Upload(ctx, u, "h") : null;
            using var fused = DeviceIO.PoisonedOutput(ctx, [B, Width]);
            using var gates = DeviceIO.PoisonedOutput(ctx, [B, gateCols]);
            if (gate == FusionGate.Sigmoid) GatedFusionKernel.LaunchSigmoid(ctx, weights.View, tx.View, fused.View, gates.View, p);
            else GatedFusionKernel.LaunchSoftmax(ctx, weights.View, tu!.View, tx.View, fused.View, gates.View, p);
            ctx.Synchronize();
            _gates = gates.ToArray<float>();
            return gatesOut ? _gates : fused.ToArray<float>();
        }

        /// <summary>The float64 fusion with the fp32 weights as given: for weights=int8 the gap is the weight quantization error.</summary>
        public override double[] RunReference()
        {
            var fused = new double[B * Width];
            var gates = new double[GateShape.Aggregate(1L, (a, b) => a * b)];
            if (gate == FusionGate.Sigmoid)
                ReferenceOps.GatedFusionSigmoid(x.Floats("z"), w.Floats("w"), bias.Floats("bias"), B, M, Width, present, fused, gates);
            else
                ReferenceOps.GatedFusionSoftmax(u.Floats("h"), w.Floats("w"), bias.Floats("bias"), x.Floats("x"), B, M, (int)u.Shape[1], Width, present, fused, gates);
            _gates = gates.Select(v => (float)v).ToArray();
            return gatesOut ? gates : fused;
        }
    }
}
