using Microsoft.ML.OnnxRuntime;

namespace OmniKernels.Bench;

/// <summary>
/// ONNX Runtime (CPU) running one of the models from tools/make_onnx_models.py, set up once so that
/// <see cref="Run"/> measures the model and not binding or allocation.
/// </summary>
internal sealed class OnnxPeer : IDisposable
{
    private readonly SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly string[] _inputNames;
    private readonly OrtValue[] _inputValues;
    private readonly string[] _outputNames;
    private readonly OrtValue[] _outputValues;

    /// <param name="modelPath">The .onnx file.</param>
    /// <param name="threads">ORT intra-op threads, to match the thread count our kernel gets.</param>
    /// <param name="inputs">Every graph input by name (initializers excluded): float[] or int[], row-major.</param>
    /// <param name="outputShape">Shape of the model's single float output.</param>
    public OnnxPeer(string modelPath, int threads, IReadOnlyList<(string Name, Array Data, long[] Shape)> inputs, long[] outputShape)
    {
        _options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            // The models are one node or a short chain: nothing to run in parallel across nodes.
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(modelPath, _options);
        _runOptions = new RunOptions();

        // By name, not position: a missing or stray input would otherwise fail deep inside Run, or not at all.
        var modelInputs = _session.InputNames;
        var given = inputs.Select(i => i.Name).ToArray();
        if (given.Length != modelInputs.Count || given.Distinct().Count() != given.Length || !given.All(modelInputs.Contains))
        {
            throw new ArgumentException(
                $"{modelPath} takes inputs [{string.Join(", ", modelInputs)}]; given [{string.Join(", ", given)}].",
                nameof(inputs));
        }

        // OrtValues over the managed arrays (pinned, not copied), so Run binds no new memory.
        _inputNames = given;
        _inputValues = inputs.Select(i => i.Data switch
        {
            float[] f => OrtValue.CreateTensorValueFromMemory(f, i.Shape),
            int[] n => OrtValue.CreateTensorValueFromMemory(n, i.Shape),
            _ => throw new ArgumentException($"Input {i.Name}: {i.Data.GetType()} is neither float[] nor int[].", nameof(inputs)),
        }).ToArray();

        Output = new float[outputShape.Aggregate(1L, (a, b) => a * b)];
        _outputNames = [.. _session.OutputNames];
        _outputValues = [OrtValue.CreateTensorValueFromMemory(Output, outputShape)];
    }

    /// <summary>The output of the last <see cref="Run"/>, row-major; ORT writes it in place.</summary>
    public float[] Output { get; }

    /// <summary>One inference into the preallocated <see cref="Output"/>.</summary>
    public void Run() => _session.Run(_runOptions, _inputNames, _inputValues, _outputNames, _outputValues);

    public void Dispose()
    {
        foreach (var value in _outputValues) value.Dispose();
        foreach (var value in _inputValues) value.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}
