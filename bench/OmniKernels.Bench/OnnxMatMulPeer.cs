using Microsoft.ML.OnnxRuntime;

namespace OmniKernels.Bench;

/// <summary>
/// ONNX Runtime (CPU) running one of the one-node MatMul models from tools/make_onnx_models.py,
/// set up once so that <see cref="Run"/> measures the MatMul and not binding or allocation.
/// </summary>
internal sealed class OnnxMatMulPeer : IDisposable
{
    private readonly SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly string[] _inputNames;
    private readonly OrtValue[] _inputValues;
    private readonly string[] _outputNames;
    private readonly OrtValue[] _outputValues;

    /// <param name="modelPath">A matmul_{n}.onnx (inputs A, B) or linear_{n}.onnx (input A, B baked in).</param>
    /// <param name="threads">ORT intra-op threads, to match the thread count our kernel gets.</param>
    /// <param name="a">A, row-major [n, n].</param>
    /// <param name="b">B, row-major [n, n]; null for linear_* models, whose B is an initializer.</param>
    /// <param name="n">Matrix size.</param>
    public OnnxMatMulPeer(string modelPath, int threads, float[] a, float[]? b, int n)
    {
        _options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            // One node: nothing to run in parallel across nodes, so no inter-op pool.
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(modelPath, _options);
        _runOptions = new RunOptions();

        // Input order follows the graph: A, then B when B is an input rather than an initializer.
        _inputNames = [.. _session.InputNames];
        var expectedInputs = b is null ? 1 : 2;
        if (_inputNames.Length != expectedInputs)
        {
            throw new ArgumentException(
                $"{modelPath} has {_inputNames.Length} input(s); expected {expectedInputs} " +
                $"(b {(b is null ? "null" : "given")}).", nameof(b));
        }

        // OrtValues over the managed arrays (pinned, not copied), so Run binds no new memory.
        long[] shape = [n, n];
        _inputValues = b is null
            ? [OrtValue.CreateTensorValueFromMemory(a, shape)]
            : [OrtValue.CreateTensorValueFromMemory(a, shape), OrtValue.CreateTensorValueFromMemory(b, shape)];

        Output = new float[n * n];
        _outputNames = [.. _session.OutputNames];
        _outputValues = [OrtValue.CreateTensorValueFromMemory(Output, shape)];
    }

    /// <summary>C from the last <see cref="Run"/>, row-major [n, n]; ORT writes it in place.</summary>
    public float[] Output { get; }

    /// <summary>One inference into the preallocated <see cref="Output"/>.</summary>
    public void Run() => _session.Run(_runOptions, _inputNames, _inputValues, _outputNames, _outputValues);

    public void Dispose()
    {
        foreach (var value in _outputValues)
        {
            value.Dispose();
        }

        for (var i = _inputValues.Length - 1; i >= 0; i--)
        {
            _inputValues[i].Dispose();
        }

        _runOptions.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}
