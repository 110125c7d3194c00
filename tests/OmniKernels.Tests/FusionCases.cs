using OmniKernels.Ops;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// Parity cases of the gated fusion (appended to <see cref="ParityTests.Cases"/>): odd widths,
/// every non-empty present subset of M = 3 and 4, batches that are not tile multiples, absent
/// blocks filled with NaN (they must never be read), fp32 and INT8 gate weights. INT8 tolerances
/// come from the weight quantization error predicted for these very inputs.
/// </summary>
public static class FusionCases
{
    private const double Fp32 = 1e-5;

    /// <summary>The fp32 floor added to every INT8 bound (accumulation order and σ/exp in float32).</summary>
    private const double Fp32Floor = 1e-5;

    /// <summary>Margin on the predicted RMS error: the error is a sum of hundreds of independent rounding terms.</summary>
    private const double Margin = 3;

    private static Dictionary<string, string> P(params string[] kv) => kv.Select(s => s.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);

    private static string Subset(bool[] present) => string.Join("", present.Select((p, i) => p ? i.ToString(System.Globalization.CultureInfo.InvariantCulture) : ""));

    private static bool[] Mask(int m, int bits) => Enumerable.Range(0, m).Select(i => ((bits >> i) & 1) != 0).ToArray();

    private static string PresentParam(bool[] present) => "present=" + string.Join(",", Enumerable.Range(0, present.Length).Where(i => present[i]));

    /// <summary>Uniform values with each absent modality's block replaced by NaN.</summary>
    private static float[] Blocks(int seed, int batch, int m, int width, bool[] present)
    {
        var v = RandomInputs.Uniform(seed, (long)batch * m * width);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                if (!present[i]) Array.Fill(v, float.NaN, (b * m + i) * width, width);
        return v;
    }

    /// <summary>A Linear weight scaled by 2/√K so that the gate's pre-activations stay in σ's and softmax's sensitive range.</summary>
    private static float[] Weight(int seed, int rows, int k) =>
        RandomInputs.Uniform(seed, (long)rows * k).Select(v => v * 2f / MathF.Sqrt(k)).ToArray();

    /// <summary>w = q·s_n with int8 q and one |q| = 127 per row: per-row quantization reproduces it, so INT8 must match fp32 closely.</summary>
    private static float[] Int8Exact(int seed, int rows, int k)
    {
        var rng = new Random(seed);
        var w = new float[(long)rows * k];
        for (int n = 0; n < rows; n++)
        {
            float s = (float)(0.5 + rng.NextDouble()) * 2f / MathF.Sqrt(k) / 127f;
            for (int i = 0; i < k; i++) w[(long)n * k + i] = rng.Next(-126, 127) * s;
            w[(long)n * k + n % k] = (rng.Next(2) == 0 ? -127 : 127) * s;
        }
        return w;
    }

    private static Dictionary<string, HostTensor> SigmoidInputs(int batch, int m, int e, bool[] present, bool exactInt8 = false)
    {
        int n = m * e, seed = batch * 1009 + m * 101 + e;
        return new()
        {
            ["z"] = new HostTensor([batch, m, e], Blocks(seed, batch, m, e, present)),
            ["w"] = new HostTensor([n, n], exactInt8 ? Int8Exact(seed + 1, n, n) : Weight(seed + 1, n, n)),
            ["bias"] = new HostTensor([n], RandomInputs.Uniform(seed + 2, n, -0.5f, 0.5f)),
        };
    }

    private static Dictionary<string, HostTensor> SoftmaxInputs(int batch, int m, int k, int f, bool[] present)
    {
        int seed = batch * 1013 + m * 103 + k * 7 + f;
        return new()
        {
            // Larger h spreads the logits, so that softmax weights differ visibly between modalities.
            ["h"] = new HostTensor([batch, k], RandomInputs.Uniform(seed, (long)batch * k, -2f, 2f)),
            ["x"] = new HostTensor([batch, m, f], Blocks(seed + 1, batch, m, f, present)),
            ["w"] = new HostTensor([m, k], Weight(seed + 2, m, k)),
            ["bias"] = new HostTensor([m], RandomInputs.Uniform(seed + 3, m, -0.5f, 0.5f)),
        };
    }

    private static ParityCase Sigmoid(int batch, int m, int e, bool[] present, bool gates = false, bool int8 = false, bool exactInt8 = false, bool large = false)
    {
        var inputs = SigmoidInputs(batch, m, e, present, exactInt8);
        string name = $"gated_fusion_sigmoid_b{batch}_m{m}_e{e}_p{Subset(present)}{(int8 ? exactInt8 ? "_int8_exact" : "_int8" : "")}{(gates ? "_gates" : "")}";
        var p = P(PresentParam(present), $"weights={(int8 ? "int8" : "fp32")}", $"output={(gates ? "gates" : "fused")}");
        double tolerance = int8 && !exactInt8 ? SigmoidInt8Tolerance(inputs, present, gates) : Fp32;
        return new ParityCase(name, "gated-fusion", () => SigmoidInputs(batch, m, e, present, exactInt8), p, tolerance, large);
    }

    private static ParityCase Softmax(int batch, int m, int k, int f, bool[] present, bool gates = false, bool int8 = false, bool large = false)
    {
        var inputs = SoftmaxInputs(batch, m, k, f, present);
        string name = $"gated_fusion_softmax_b{batch}_m{m}_k{k}_f{f}_p{Subset(present)}{(int8 ? "_int8" : "")}{(gates ? "_weights" : "")}";
        var p = P("gate=softmax", PresentParam(present), $"weights={(int8 ? "int8" : "fp32")}", $"output={(gates ? "gates" : "fused")}");
        double tolerance = int8 ? SoftmaxInt8Tolerance(inputs, present, gates) : Fp32;
        return new ParityCase(name, "gated-fusion", () => SoftmaxInputs(batch, m, k, f, present), p, tolerance, large);
    }

    public static IEnumerable<ParityCase> All()
    {
        for (int bits = 1; bits < 8; bits++) yield return Sigmoid(5, 3, 37, Mask(3, bits));
        for (int bits = 1; bits < 16; bits++) yield return Sigmoid(7, 4, 24, Mask(4, bits));
        foreach (int bits in new[] { 0b001, 0b101, 0b111 }) yield return Sigmoid(5, 3, 37, Mask(3, bits), gates: true);
        foreach (int bits in new[] { 0b0010, 0b1011, 0b1111 }) yield return Sigmoid(7, 4, 24, Mask(4, bits), gates: true);
        // Width below one 16-lane strip (lanes clamp to the last column), a width of exactly three strips, one row.
        foreach (int bits in new[] { 0b01, 0b10, 0b11 }) yield return Sigmoid(3, 2, 9, Mask(2, bits), gates: bits == 0b11);
        yield return Sigmoid(6, 2, 48, Mask(2, 0b11), gates: true);
        yield return Sigmoid(1, 3, 37, Mask(3, 0b110));
        yield return Sigmoid(1, 1, 20, Mask(1, 1), gates: true);

        foreach (int bits in new[] { 0b001, 0b010, 0b101, 0b111 }) yield return Sigmoid(5, 3, 37, Mask(3, bits), int8: true);
        foreach (int bits in new[] { 0b1100, 0b1111 }) yield return Sigmoid(9, 4, 24, Mask(4, bits), gates: true, int8: true);
        yield return Sigmoid(3, 2, 9, Mask(2, 0b11), int8: true);
        yield return Sigmoid(5, 3, 37, Mask(3, 0b111), int8: true, exactInt8: true);
        yield return Sigmoid(7, 4, 24, Mask(4, 0b0110), gates: true, int8: true, exactInt8: true);

        // The adaptive cross-attention fusion's shape (vision, text; fusion_dim 48, gate_net input 2F = 96 after its first Linear: K = 48).
        foreach (int bits in new[] { 0b01, 0b10, 0b11 })
        {
            yield return Softmax(5, 2, 48, 40, Mask(2, bits));
            yield return Softmax(5, 2, 48, 40, Mask(2, bits), gates: true);
        }
        for (int bits = 1; bits < 8; bits++) yield return Softmax(6, 3, 37, 24, Mask(3, bits));
        foreach (int bits in new[] { 0b1001, 0b1111 }) yield return Softmax(3, 4, 19, 9, Mask(4, bits), gates: bits == 0b1111);
        yield return Softmax(5, 2, 48, 40, Mask(2, 0b11), int8: true);
        yield return Softmax(6, 3, 37, 24, Mask(3, 0b101), gates: true, int8: true);

        yield return Sigmoid(16, 4, 512, Mask(4, 0b1111), large: true);
        yield return Sigmoid(16, 4, 512, Mask(4, 0b0101), gates: true, large: true);
        yield return Sigmoid(17, 3, 768, Mask(3, 0b011), int8: true, large: true);
        yield return Softmax(33, 2, 512, 512, Mask(2, 0b11), large: true);
        yield return Softmax(33, 2, 512, 512, Mask(2, 0b11), int8: true, large: true);
    }

    /// <summary>
    /// Shapes against the GPU schedule's groups (4-row tiles, 16-column strips, 256-column softmax
    /// chunks): a partial last row tile, an overlapping last strip, a second, partial chunk.
    /// </summary>
    public static IEnumerable<ParityCase> GpuEdgeCases()
    {
        yield return Sigmoid(10, 3, 53, Mask(3, 0b101), gates: true);
        yield return Sigmoid(10, 3, 53, Mask(3, 0b111), int8: true);
        yield return Softmax(6, 3, 70, 300, Mask(3, 0b110));
        yield return Softmax(6, 3, 70, 300, Mask(3, 0b111), gates: true, int8: true);
    }

    /// <summary>Per-output-row scale of symmetric int8 quantization, as the kernels' quantizer defines it: max|w_n| / 127.</summary>
    private static double[] RowScales(float[] w, int rows, int k)
    {
        var s = new double[rows];
        for (int n = 0; n < rows; n++)
            for (int i = 0; i < k; i++) s[n] = Math.Max(s[n], Math.Abs((double)w[(long)n * k + i]) / 127);
        return s;
    }

    private static double Norm(IEnumerable<double> v) => Math.Sqrt(v.Sum(x => x * x));

    /// <summary>
    /// Rounding to the int8 grid errs by δ ~ U(−s_n/2, s_n/2) per weight (variance s_n²/12), so a
    /// gate's pre-activation errs with variance s_n²/12·Σ_{k present} z_k², and the gate by σ'(a) = g(1 − g)
    /// times that; the fused error adds the gate errors weighted by z. Tolerance: the predicted RMS
    /// error relative to the reference's norm, times <see cref="Margin"/>, plus the fp32 floor.
    /// </summary>
    private static double SigmoidInt8Tolerance(Dictionary<string, HostTensor> inputs, bool[] present, bool gatesOut)
    {
        var zt = inputs["z"];
        int b = (int)zt.Shape[0], m = (int)zt.Shape[1], e = (int)zt.Shape[2], n = m * e;
        float[] z = zt.Floats("z"), w = inputs["w"].Floats("w");
        var fused = new double[b * e];
        var gates = new double[b * n];
        ReferenceOps.GatedFusionSigmoid(z, w, inputs["bias"].Floats("bias"), b, m, e, present, fused, gates);
        var s = RowScales(w, n, n);
        double gateVar = 0, fusedVar = 0;
        for (int r = 0; r < b; r++)
        {
            double zz = 0;
            for (int k = 0; k < n; k++)
                if (present[k / e]) zz += (double)z[r * n + k] * z[r * n + k];
            for (int o = 0; o < n; o++)
            {
                if (!present[o / e]) continue;
                double g = gates[r * n + o], slope = g * (1 - g);
                double v = slope * slope * s[o] * s[o] / 12 * zz;
                gateVar += v;
                fusedVar += v * z[r * n + o] * z[r * n + o];
            }
        }
        return gatesOut ? Margin * Math.Sqrt(gateVar) / Norm(gates) + Fp32Floor : Margin * Math.Sqrt(fusedVar) / Norm(fused) + Fp32Floor;
    }

    /// <summary>
    /// Logit m errs with variance s_m²/12·‖h‖²; the softmax weights move by J·Δl with J = diag(p) − p·pᵀ over
    /// the present modalities, and the fused vector by Σ_i Δp_i·x_i. Tolerance as for the sigmoid gate.
    /// </summary>
    private static double SoftmaxInt8Tolerance(Dictionary<string, HostTensor> inputs, bool[] present, bool weightsOut)
    {
        var xt = inputs["x"];
        int b = (int)xt.Shape[0], m = (int)xt.Shape[1], f = (int)xt.Shape[2], k = (int)inputs["h"].Shape[1];
        float[] h = inputs["h"].Floats("h"), x = xt.Floats("x"), w = inputs["w"].Floats("w");
        var fused = new double[b * f];
        var p = new double[b * m];
        ReferenceOps.GatedFusionSoftmax(h, w, inputs["bias"].Floats("bias"), x, b, m, k, f, present, fused, p);
        var s = RowScales(w, m, k);
        double weightVar = 0, fusedVar = 0;
        for (int r = 0; r < b; r++)
        {
            double hh = 0;
            for (int i = 0; i < k; i++) hh += (double)h[r * k + i] * h[r * k + i];
            double J(int i, int j) => present[i] && present[j] ? (i == j ? p[r * m + i] : 0) - p[r * m + i] * p[r * m + j] : 0;
            for (int j = 0; j < m; j++)
            {
                if (!present[j]) continue;
                double lv = s[j] * s[j] / 12 * hh;
                for (int i = 0; i < m; i++) weightVar += J(i, j) * J(i, j) * lv;
                for (int c = 0; c < f; c++)
                {
                    double d = 0;
                    for (int i = 0; i < m; i++)
                        if (present[i]) d += J(i, j) * x[(r * m + i) * f + c];
                    fusedVar += d * d * lv;
                }
            }
        }
        return weightsOut ? Margin * Math.Sqrt(weightVar) / Norm(p) + Fp32Floor : Margin * Math.Sqrt(fusedVar) / Norm(fused) + Fp32Floor;
    }
}
