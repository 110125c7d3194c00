using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace OmniKernels.Weights;

/// <summary>A quantized Linear's weights as read from a checkpoint: <see cref="Weight"/> I8 [out, in] row-major, <see cref="Scales"/> [out].</summary>
public sealed record Int8Linear(long OutFeatures, long InFeatures, sbyte[] Weight, float[] Scales);

/// <summary>
/// INT8 checkpoints in the compressed-tensors W8A8 convention that vLLM reads: a quantized Linear stores
/// <c>NAME.weight</c> as I8 [out, in] and <c>NAME.weight_scale</c> as F32 [out, 1], symmetric per output
/// channel, so that <c>weight ≈ q · scale</c> row by row; activations are quantized dynamically per token at
/// run time; the model's <c>config.json</c> says so in <c>quantization_config</c>. Stateless and thread-safe.
/// </summary>
/// <remarks>
/// The quantization, per row w of an [out, in] weight: <c>scale = max|w| / 127</c> (float32), then
/// <c>q = round(w / scale)</c> with ties to even, exactly NumPy's <c>np.round(w / scale)</c> in float32. A row
/// whose scale is 0 (all zeros, or so small that max|w| / 127 underflows) gets scale 0 and q = 0, so that
/// dequantization gives 0 instead of the NaN a division by zero would. A non-finite weight is an error.
/// </remarks>
public static class Int8Checkpoint
{
    /// <summary>The suffix of the scale tensor beside <c>NAME.weight</c>.</summary>
    public const string ScaleName = "weight_scale";

    /// <summary>
    /// Quantizes a row-major [rows, cols] float weight per row into <paramref name="quantized"/> ([rows, cols]) and
    /// <paramref name="scales"/> ([rows]); see the type's remarks for the exact rule.
    /// </summary>
    /// <exception cref="ArgumentException">Sizes disagree, or a weight is NaN or infinite.</exception>
    public static void QuantizeRows(ReadOnlySpan<float> weight, int rows, int cols, Span<sbyte> quantized, Span<float> scales)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        long n = (long)rows * cols;
        if (weight.Length != n || quantized.Length != n || scales.Length != rows)
            throw new ArgumentException($"[{rows}, {cols}] needs {n} weights, {n} outputs and {rows} scales; got {weight.Length}, {quantized.Length}, {scales.Length}");
        var scratch = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            var row = weight.Slice(r * cols, cols);
            var q = quantized.Slice(r * cols, cols);
            float max = cols == 0 ? 0f : MathF.Abs(TensorPrimitives.MaxMagnitude(row));
            if (!float.IsFinite(max))
                throw new ArgumentException($"row {r} holds a NaN or infinite weight");
            float scale = max / 127f;
            scales[r] = scale;
            if (scale == 0f)
            {
                q.Clear();
                continue;
            }
            TensorPrimitives.Divide(row, scale, scratch);
            TensorPrimitives.Round(scratch, MidpointRounding.ToEven, scratch);
            // |w| / scale ≤ 127 up to one rounding of the division, so nothing saturates in practice.
            TensorPrimitives.ConvertSaturating<float, sbyte>(scratch, q);
        }
    }

    /// <summary>Dequantizes [rows, cols]: <c>destination[r, c] = quantized[r, c] · scales[r]</c>.</summary>
    public static void Dequantize(ReadOnlySpan<sbyte> quantized, ReadOnlySpan<float> scales, int rows, int cols, Span<float> destination)
    {
        long n = (long)rows * cols;
        if (quantized.Length != n || destination.Length != n || scales.Length != rows)
            throw new ArgumentException($"[{rows}, {cols}] needs {n} values, {n} outputs and {rows} scales");
        TensorPrimitives.ConvertChecked<sbyte, float>(quantized, destination);
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Multiply(destination.Slice(r * cols, cols), scales[r], destination.Slice(r * cols, cols));
    }

    /// <summary>
    /// True when the scope (a Linear module, e.g. <c>vision_model.encoder.layers.0.mlp.fc1</c>) holds an I8
    /// <c>weight</c> and a <c>weight_scale</c>. Marks nothing used.
    /// </summary>
    public static bool IsQuantizedLinear(WeightScope linear) =>
        linear.TryPeek("weight", out var w) && w.DType == SafetensorsDType.I8 && linear.Contains(ScaleName);

    /// <summary>Reads a quantized Linear of [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>], checking both tensors' shapes and dtypes.</summary>
    /// <exception cref="SafetensorsFormatException">Missing, another shape or dtype (named in the message).</exception>
    public static Int8Linear ReadLinear(WeightScope linear, long outFeatures, long inFeatures)
    {
        var weight = linear.GetInt8([outFeatures, inFeatures], "weight");
        var scaleBytes = linear.GetBytes([outFeatures, 1], SafetensorsDType.F32, ScaleName);
        return new Int8Linear(outFeatures, inFeatures, weight, MemoryMarshal.Cast<byte, float>(scaleBytes).ToArray());
    }

    /// <summary>
    /// The rule <c>omni quantize</c> uses without the model's module definitions: a tensor is a Linear weight
    /// when its name ends in <c>.weight</c>, it is 2-D and floating-point, and its name contains neither
    /// <c>embed</c> (embedding tables: token, position, patch embeddings) nor <c>norm</c> (LayerNorm/RMSNorm),
    /// nor any of the <paramref name="keep"/> substrings (ordinal, case-sensitive). Biases are 1-D, convolutions
    /// 4-D: both stay float.
    /// </summary>
    public static bool IsLinearWeight(TensorInfo tensor, IReadOnlyCollection<string> keep)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(keep);
        string name = tensor.Name;
        return name.EndsWith(".weight", StringComparison.Ordinal) && tensor.Shape.Length == 2 && tensor.DType.IsFloat()
            && !name.Contains("embed", StringComparison.OrdinalIgnoreCase)
            && !name.Contains("norm", StringComparison.OrdinalIgnoreCase)
            && !keep.Any(k => name.Contains(k, StringComparison.Ordinal));
    }

    /// <summary>
    /// The compressed-tensors <c>quantization_config</c> for this checkpoint: W8A8 int, weights symmetric per
    /// channel (static), input activations symmetric per token (dynamic), targets <c>Linear</c>, and
    /// <paramref name="ignore"/> naming the Linear modules left in float.
    /// </summary>
    public static JsonObject QuantizationConfig(IEnumerable<string> ignore) => new()
    {
        ["quant_method"] = "compressed-tensors",
        ["format"] = "int-quantized",
        ["quantization_status"] = "compressed",
        ["config_groups"] = new JsonObject
        {
            ["group_0"] = new JsonObject
            {
                ["targets"] = new JsonArray("Linear"),
                ["weights"] = Args(strategy: "channel", dynamic: false, observer: "minmax"),
                ["input_activations"] = Args(strategy: "token", dynamic: true, observer: null),
                ["output_activations"] = null,
            },
        },
        ["ignore"] = new JsonArray(ignore.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()),
        ["kv_cache_scheme"] = null,
    };

    private static JsonObject Args(string strategy, bool dynamic, string? observer) => new()
    {
        ["num_bits"] = 8,
        ["type"] = "int",
        ["symmetric"] = true,
        ["strategy"] = strategy,
        ["dynamic"] = dynamic,
        ["group_size"] = null,
        ["block_structure"] = null,
        ["actorder"] = null,
        ["observer"] = observer,
        ["observer_kwargs"] = new JsonObject(),
    };
}
