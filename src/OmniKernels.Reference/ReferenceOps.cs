namespace OmniKernels.Reference;

/// <summary>Activations the reference knows, by the same names the kernels use.</summary>
public enum RefActivation
{
    /// <summary>y = x.</summary>
    None,
    /// <summary>x·Φ(x).</summary>
    Gelu,
    /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    GeluTanh,
    /// <summary>x·σ(1.702x).</summary>
    QuickGelu,
    /// <summary>x·σ(x).</summary>
    Silu,
    /// <summary>max(x, 0).</summary>
    Relu,
}

/// <summary>
/// Float64 reference implementations: plain loops, accumulating in double, sharing no code with
/// the kernels. Inputs are dense row-major; the destination comes last.
/// </summary>
public static class ReferenceOps
{
    /// <summary>
    /// destination[b, m, n] = act(Σ_k a[b, m, k]·B[b, k, n] + bias[n]) + residual[b, m, n], where B is
    /// b as [batchB, K, N], or its transpose when <paramref name="transposeB"/> (b as [batchB, N, K]);
    /// batchB is 1 (shared) or <paramref name="batch"/>.
    /// </summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int batch, int m, int k, int n, bool transposeB,
        ReadOnlySpan<float> bias, RefActivation activation, ReadOnlySpan<float> residual, Span<double> destination)
    {
        int batchB = b.Length / (k * n);
        if (batchB != 1 && batchB != batch) throw new ArgumentException("b must hold 1 or batch matrices");
        if (a.Length != batch * m * k || destination.Length != batch * m * n) throw new ArgumentException("a or destination size");
        for (int bi = 0; bi < batch; bi++)
        {
            int bOff = batchB == 1 ? 0 : bi * k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int q = 0; q < k; q++)
                        s += (double)a[(bi * m + i) * k + q] * b[bOff + (transposeB ? j * k + q : q * n + j)];
                    if (!bias.IsEmpty) s += bias[j];
                    s = Activate(activation, s);
                    int o = (bi * m + i) * n + j;
                    if (!residual.IsEmpty) s += residual[o];
                    destination[o] = s;
                }
        }
    }

    /// <summary>destination = act(x), elementwise.</summary>
    public static void Activation(ReadOnlySpan<float> x, RefActivation activation, Span<double> destination)
    {
        for (int i = 0; i < x.Length; i++) destination[i] = Activate(activation, x[i]);
    }

    /// <summary>destination = a + b, elementwise.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> destination)
    {
        for (int i = 0; i < a.Length; i++) destination[i] = (double)a[i] + b[i];
    }

    /// <summary>destination = a · b, elementwise.</summary>
    public static void Mul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> destination)
    {
        for (int i = 0; i < a.Length; i++) destination[i] = (double)a[i] * b[i];
    }

    /// <summary>Per row of length <paramref name="cols"/>: (x − mean)/√(var + eps)·γ + β, biased variance.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, int cols, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, double eps, Span<double> destination)
    {
        for (int r = 0; r < x.Length / cols; r++)
        {
            var row = x.Slice(r * cols, cols);
            double mean = 0;
            foreach (var v in row) mean += v;
            mean /= cols;
            double var = 0;
            foreach (var v in row) var += (v - mean) * (v - mean);
            var /= cols;
            double inv = 1.0 / Math.Sqrt(var + eps);
            for (int c = 0; c < cols; c++) destination[r * cols + c] = (row[c] - mean) * inv * gamma[c] + beta[c];
        }
    }

    /// <summary>Per row: x/√(mean(x²) + eps)·γ.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, int cols, ReadOnlySpan<float> gamma, double eps, Span<double> destination)
    {
        for (int r = 0; r < x.Length / cols; r++)
        {
            var row = x.Slice(r * cols, cols);
            double ms = 0;
            foreach (var v in row) ms += (double)v * v;
            double inv = 1.0 / Math.Sqrt(ms / cols + eps);
            for (int c = 0; c < cols; c++) destination[r * cols + c] = row[c] * inv * gamma[c];
        }
    }

    /// <summary>
    /// Per row: softmax of scale·x over its visible columns, those below lengths[row / (rows / lengths.Length)]
    /// (all when lengths is empty); hidden columns and rows with nothing visible (or all −∞) give zeros.
    /// </summary>
    public static void Softmax(ReadOnlySpan<float> x, int cols, double scale, ReadOnlySpan<int> lengths, Span<double> destination)
    {
        int rows = x.Length / cols;
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            var dst = destination.Slice(r * cols, cols);
            dst.Clear();
            int visible = lengths.IsEmpty ? cols : Math.Clamp(lengths[r / (rows / lengths.Length)], 0, cols);
            double max = double.NegativeInfinity;
            for (int c = 0; c < visible; c++) max = Math.Max(max, scale * row[c]);
            if (double.IsNegativeInfinity(max)) continue;
            double sum = 0;
            for (int c = 0; c < visible; c++) sum += dst[c] = Math.Exp(scale * row[c] - max);
            for (int c = 0; c < visible; c++) dst[c] /= sum;
        }
    }

    /// <summary>
    /// Scaled dot-product attention per (batch, head), in double: O = softmax(Q·Kᵀ·scale + mask)·V,
    /// with Q, K, V, O dense as [B, H, S, D] or, when <paramref name="bshd"/>, [B, S, H, D]. Key j is
    /// hidden from query i when j ≥ lengths[b] (if given) or, when causal, j &gt; i. A query with no
    /// visible key gets zeros.
    /// </summary>
    public static void Attention(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int batch, int heads, int seqQ, int seqK, int headDim, bool bshd, double scale, bool causal,
        ReadOnlySpan<int> lengths, Span<double> destination)
    {
        int Index(int b, int h, int s, int d, int seq) =>
            bshd ? ((b * seq + s) * heads + h) * headDim + d : ((b * heads + h) * seq + s) * headDim + d;
        var scores = new double[seqK];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seqQ; i++)
                {
                    int visible = lengths.IsEmpty ? seqK : Math.Clamp(lengths[b], 0, seqK);
                    if (causal) visible = Math.Min(visible, i + 1);
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < visible; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                            dot += (double)q[Index(b, h, i, d, seqQ)] * k[Index(b, h, j, d, seqK)];
                        scores[j] = dot * scale;
                        max = Math.Max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < visible; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                    for (int d = 0; d < headDim; d++)
                    {
                        double o = 0;
                        for (int j = 0; j < visible; j++) o += scores[j] * v[Index(b, h, j, d, seqK)];
                        destination[Index(b, h, i, d, seqQ)] = visible == 0 ? 0 : o / sum;
                    }
                }
    }

    /// <summary>
    /// Conv2d with kernel = stride = P over dense [B, C, H, W] images, weight [D, C, P, P], then HF
    /// CLIP's embeddings: destination [B, T, D] with T = N + 1 when <paramref name="cls"/> is given
    /// (row 0 = cls, rows 1.. = patches in row-major patch order), else T = N; bias [D] and pos [T, D]
    /// are added where given. Patches past ⌊H/P⌋ × ⌊W/P⌋ are dropped, as Conv2d does.
    /// </summary>
    public static void PatchEmbed(ReadOnlySpan<float> image, int batch, int channels, int height, int width, int patch,
        ReadOnlySpan<float> weight, int dim, ReadOnlySpan<float> bias, ReadOnlySpan<float> cls, ReadOnlySpan<float> pos, Span<double> destination)
    {
        int gh = height / patch, gw = width / patch, n = gh * gw, t0 = cls.IsEmpty ? 0 : 1, tokens = n + t0;
        for (int b = 0; b < batch; b++)
        {
            if (t0 == 1)
                for (int d = 0; d < dim; d++)
                    destination[b * tokens * dim + d] = (double)cls[d] + (pos.IsEmpty ? 0 : pos[d]);
            for (int i = 0; i < n; i++)
                for (int d = 0; d < dim; d++)
                {
                    double sum = bias.IsEmpty ? 0 : bias[d];
                    for (int c = 0; c < channels; c++)
                        for (int py = 0; py < patch; py++)
                            for (int px = 0; px < patch; px++)
                                sum += (double)image[((b * channels + c) * height + i / gw * patch + py) * width + i % gw * patch + px]
                                    * weight[((d * channels + c) * patch + py) * patch + px];
                    int row = t0 + i;
                    if (!pos.IsEmpty) sum += pos[row * dim + d];
                    destination[(b * tokens + row) * dim + d] = sum;
                }
        }
    }

    /// <summary>destination[m, n] = Σ_k a[m, k]·w[n, k], exactly in 64-bit integers (w as [N, K], a Linear weight).</summary>
    public static void MatMulInt8(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> w, int m, int k, int n, Span<long> destination)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long s = 0;
                for (int q = 0; q < k; q++) s += (long)a[i * k + q] * w[j * k + q];
                destination[i * n + j] = s;
            }
    }

    /// <summary>Symmetric per-row int8 quantization in double: scale = max|x| / 127, q = round-half-even(x / scale).</summary>
    public static void QuantizeRows(ReadOnlySpan<float> x, int cols, Span<int> q, Span<double> scales)
    {
        for (int r = 0; r < x.Length / cols; r++)
        {
            double max = 0;
            for (int c = 0; c < cols; c++) max = Math.Max(max, Math.Abs((double)x[r * cols + c]));
            scales[r] = max / 127;
            for (int c = 0; c < cols; c++)
                q[r * cols + c] = max == 0 ? 0 : (int)Math.Clamp(Math.Round(x[r * cols + c] * (127 / max), MidpointRounding.ToEven), -127, 127);
        }
    }

    /// <summary>One activation in double.</summary>
    public static double Activate(RefActivation activation, double x) => activation switch
    {
        RefActivation.None => x,
        RefActivation.Gelu => 0.5 * x * Erfc(-x / Math.Sqrt(2.0)),
        RefActivation.GeluTanh => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x))),
        RefActivation.QuickGelu => x / (1 + Math.Exp(-1.702 * x)),
        RefActivation.Silu => x / (1 + Math.Exp(-x)),
        RefActivation.Relu => Math.Max(x, 0),
        _ => throw new ArgumentOutOfRangeException(nameof(activation)),
    };

    /// <summary>
    /// erfc in double: the Maclaurin series of erf below 2.5 (about 1e-13 absolute there) and a
    /// Lentz continued fraction for erfc above, where the series would cancel.
    /// </summary>
    public static double Erfc(double x)
    {
        if (x < 0) return 2 - Erfc(-x);
        if (x < 2.5)
        {
            double term = x, sum = x, x2 = x * x;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-18 * Math.Abs(sum); n++)
            {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }
        // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int i = 1; i < 300; i++)
        {
            double an = i * 0.5;
            d = x + an * d;
            d = Math.Abs(d) < tiny ? tiny : d;
            c = x + an / c;
            c = Math.Abs(c) < tiny ? tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }

    /// <summary>
    /// The sigmoid gated fusion over z [B, M·E] (block m = columns m·E … m·E + E − 1), a Linear weight
    /// [M·E, M·E] ([out, in]) and bias [M·E]: for n in a present block, gates[b, n] = σ(bias[n] +
    /// Σ_{k in a present block} weight[n, k]·z[b, k]); gates of absent blocks are 0; fused[b, e] =
    /// Σ_{m present} gates[b, m·E + e]·z[b, m·E + e]. Absent blocks of z are never read.
    /// </summary>
    public static void GatedFusionSigmoid(ReadOnlySpan<float> z, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        int batch, int modalities, int width, ReadOnlySpan<bool> present, Span<double> fused, Span<double> gates)
    {
        int n = modalities * width;
        if (z.Length != batch * n || weight.Length != n * n || bias.Length != n || present.Length != modalities
            || fused.Length != batch * width || gates.Length != batch * n)
            throw new ArgumentException("z, weight, bias, present, fused or gates size");
        for (int b = 0; b < batch; b++)
        {
            for (int o = 0; o < n; o++)
            {
                if (!present[o / width])
                {
                    gates[b * n + o] = 0;
                    continue;
                }
                double a = bias[o];
                for (int k = 0; k < n; k++)
                    if (present[k / width]) a += (double)weight[o * n + k] * z[b * n + k];
                gates[b * n + o] = 1 / (1 + Math.Exp(-a));
            }
            for (int e = 0; e < width; e++)
            {
                double s = 0;
                for (int m = 0; m < modalities; m++)
                    if (present[m]) s += gates[b * n + m * width + e] * z[b * n + m * width + e];
                fused[b * width + e] = s;
            }
        }
    }

    /// <summary>
    /// The softmax gated fusion: logits[b, m] = bias[m] + Σ_k weight[m, k]·h[b, k] (h [B, K], weight
    /// [M, K]); weights[b, ·] = softmax of the logits over the present modalities, 0 for absent ones;
    /// fused[b, f] = Σ_{m present} weights[b, m]·x[b, m·F + f] over x [B, M·F]. Absent blocks of x
    /// are never read.
    /// </summary>
    public static void GatedFusionSoftmax(ReadOnlySpan<float> h, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, ReadOnlySpan<float> x,
        int batch, int modalities, int inputWidth, int width, ReadOnlySpan<bool> present, Span<double> fused, Span<double> weights)
    {
        if (h.Length != batch * inputWidth || weight.Length != modalities * inputWidth || bias.Length != modalities || present.Length != modalities
            || x.Length != batch * modalities * width || fused.Length != batch * width || weights.Length != batch * modalities)
            throw new ArgumentException("h, weight, bias, x, present, fused or weights size");
        var logits = new double[modalities];
        for (int b = 0; b < batch; b++)
        {
            double max = double.NegativeInfinity;
            for (int m = 0; m < modalities; m++)
            {
                double a = bias[m];
                for (int k = 0; k < inputWidth; k++) a += (double)weight[m * inputWidth + k] * h[b * inputWidth + k];
                logits[m] = a;
                if (present[m]) max = Math.Max(max, a);
            }
            double sum = 0;
            for (int m = 0; m < modalities; m++)
                if (present[m]) sum += Math.Exp(logits[m] - max);
            for (int m = 0; m < modalities; m++)
                weights[b * modalities + m] = present[m] ? Math.Exp(logits[m] - max) / sum : 0;
            for (int f = 0; f < width; f++)
            {
                double s = 0;
                for (int m = 0; m < modalities; m++)
                    if (present[m]) s += weights[b * modalities + m] * x[(b * modalities + m) * width + f];
                fused[b * width + f] = s;
            }
        }
    }

    /// <summary>
    /// Masked mean pooling: destination[b, d] = mean over s &lt; counts[b] of x[b, s, d] (every s
    /// when <paramref name="counts"/> is empty); x [B, S, D], each count in 1..S.
    /// </summary>
    public static void MeanPool(ReadOnlySpan<float> x, int batch, int steps, int cols, ReadOnlySpan<int> counts, Span<double> destination)
    {
        if (x.Length != batch * steps * cols || destination.Length != batch * cols || !(counts.IsEmpty || counts.Length == batch))
            throw new ArgumentException("x, counts or destination size");
        for (int b = 0; b < batch; b++)
        {
            int n = counts.IsEmpty ? steps : counts[b];
            if (n < 1 || n > steps) throw new ArgumentException($"count {n} of batch item {b} is outside 1..{steps}");
            for (int d = 0; d < cols; d++)
            {
                double sum = 0;
                for (int t = 0; t < n; t++) sum += x[(b * steps + t) * cols + d];
                destination[b * cols + d] = sum / n;
            }
        }
    }

    /// <summary>Row index[b] of each batch item: destination[b, d] = x[b, index[b], d]; x [B, S, D].</summary>
    public static void GatherRows(ReadOnlySpan<float> x, int batch, int steps, int cols, ReadOnlySpan<int> index, Span<double> destination)
    {
        if (x.Length != batch * steps * cols || destination.Length != batch * cols || index.Length != batch)
            throw new ArgumentException("x, index or destination size");
        for (int b = 0; b < batch; b++)
        {
            if (index[b] < 0 || index[b] >= steps) throw new ArgumentException($"index {index[b]} of batch item {b} is outside 0..{steps - 1}");
            for (int d = 0; d < cols; d++) destination[b * cols + d] = x[(b * steps + index[b]) * cols + d];
        }
    }

    /// <summary>destination = x / ‖x‖₂ per row of <paramref name="cols"/> values; a zero row stays zero.</summary>
    public static void L2NormalizeRows(ReadOnlySpan<float> x, int cols, Span<double> destination)
    {
        if (x.Length % cols != 0 || destination.Length != x.Length) throw new ArgumentException("x or destination size");
        for (int r = 0; r < x.Length / cols; r++)
        {
            double sq = 0;
            for (int c = 0; c < cols; c++) sq += (double)x[r * cols + c] * x[r * cols + c];
            double inv = sq > 0 ? 1 / Math.Sqrt(sq) : 0;
            for (int c = 0; c < cols; c++) destination[r * cols + c] = x[r * cols + c] * inv;
        }
    }

    /// <summary>
    /// Per query row q of <paramref name="queries"/> [Q, E]: the indices of the k rows of
    /// <paramref name="index"/> [N, E] with the highest dot product q·xᵢ (in double), best first, equal
    /// products by lower index, into destination [Q, k]. A full sort per query; shares nothing with the kernel.
    /// </summary>
    public static void TopKDot(ReadOnlySpan<float> index, ReadOnlySpan<float> queries, int cols, int k, Span<int> destination)
    {
        int n = index.Length / cols, nq = queries.Length / cols;
        if (index.Length % cols != 0 || queries.Length % cols != 0 || destination.Length != nq * k) throw new ArgumentException("index, queries or destination size");
        if (k < 1 || k > n) throw new ArgumentException($"k = {k} must be in 1..{n}");
        var scores = new double[n];
        var order = new int[n];
        for (int q = 0; q < nq; q++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int c = 0; c < cols; c++) s += (double)queries[q * cols + c] * index[i * cols + c];
                scores[i] = s;
                order[i] = i;
            }
            Array.Sort(order, (a, b) => scores[a] != scores[b] ? scores[b].CompareTo(scores[a]) : a.CompareTo(b));
            for (int r = 0; r < k; r++) destination[q * k + r] = order[r];
        }
    }

    /// <summary>Token embedding: destination[t, d] = table[ids[t], d] + pos[t mod S, d] over ids [B·S]; table [V, D], pos [≥ S, D].</summary>
    public static void Embedding(ReadOnlySpan<float> table, int cols, ReadOnlySpan<int> ids, int steps, ReadOnlySpan<float> pos, Span<double> destination)
    {
        if (table.Length % cols != 0 || ids.Length % steps != 0 || pos.Length < steps * cols || destination.Length != ids.Length * cols)
            throw new ArgumentException("table, ids, pos or destination size");
        for (int t = 0; t < ids.Length; t++)
        {
            if (ids[t] < 0 || ids[t] >= table.Length / cols) throw new ArgumentException($"id {ids[t]} at {t} is outside the table");
            for (int d = 0; d < cols; d++) destination[t * cols + d] = (double)table[ids[t] * cols + d] + pos[t % steps * cols + d];
        }
    }

    /// <summary>
    /// PyTorch's Conv1d with zero padding: x [C, T] (one item), weight [O, C, k], bias [O] (or
    /// empty); destination [O, T_out] with T_out = (T + 2·padding − k) / stride + 1.
    /// </summary>
    public static void Conv1d(ReadOnlySpan<float> x, int channels, int steps, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        int outputs, int kernel, int stride, int padding, Span<double> destination)
    {
        int outSteps = (steps + 2 * padding - kernel) / stride + 1;
        if (x.Length != channels * steps || weight.Length != outputs * channels * kernel || !(bias.IsEmpty || bias.Length == outputs)
            || destination.Length != outputs * outSteps)
            throw new ArgumentException("x, weight, bias or destination size");
        for (int o = 0; o < outputs; o++)
            for (int t = 0; t < outSteps; t++)
            {
                double a = bias.IsEmpty ? 0 : bias[o];
                for (int c = 0; c < channels; c++)
                    for (int j = 0; j < kernel; j++)
                    {
                        int i = t * stride + j - padding;
                        if (i >= 0 && i < steps) a += (double)weight[(o * channels + c) * kernel + j] * x[c * steps + i];
                    }
                destination[o * outSteps + t] = a;
            }
    }

    /// <summary>
    /// PyTorch's Conv3d with kernel = stride = (kt, p, p), no padding (VideoMAE's tubelets): x
    /// [C, T, H, W] (one item), weight [O, C, kt, p, p], bias [O]; destination [O, T/kt, H/p, W/p]
    /// (remainders dropped).
    /// </summary>
    public static void Conv3dTubelets(ReadOnlySpan<float> x, int channels, int frames, int height, int width,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outputs, int kt, int patch, Span<double> destination)
    {
        int nt = frames / kt, nh = height / patch, nw = width / patch;
        if (x.Length != channels * frames * height * width || weight.Length != outputs * channels * kt * patch * patch
            || bias.Length != outputs || destination.Length != outputs * nt * nh * nw)
            throw new ArgumentException("x, weight, bias or destination size");
        for (int o = 0; o < outputs; o++)
            for (int ti = 0; ti < nt; ti++)
                for (int yi = 0; yi < nh; yi++)
                    for (int xi = 0; xi < nw; xi++)
                    {
                        double a = bias[o];
                        for (int c = 0; c < channels; c++)
                            for (int dt = 0; dt < kt; dt++)
                                for (int dy = 0; dy < patch; dy++)
                                    for (int dx = 0; dx < patch; dx++)
                                        a += (double)weight[(((o * channels + c) * kt + dt) * patch + dy) * patch + dx]
                                            * x[((c * frames + ti * kt + dt) * height + yi * patch + dy) * width + xi * patch + dx];
                        destination[((o * nt + ti) * nh + yi) * nw + xi] = a;
                    }
    }
}
