namespace OmniKernels.Graph;

/// <summary>A value of a recorded graph: an index into its builder's value table.</summary>
public readonly record struct ValueId(int Index);

/// <summary>What a value is: fed from the host, an intermediate in the arena, or memory the model owns (weights).</summary>
public enum ValueKind
{
    /// <summary>Written from the host before each run (an input of the plan).</summary>
    Input,
    /// <summary>Produced and consumed by nodes; placed in the arena by liveness.</summary>
    Temp,
    /// <summary>A view the model owns (weights, tables); never placed.</summary>
    External,
}

/// <summary>A recorded value: its kind, dtype, shape and row alignment (the GEMM writes whole 16-column panels).</summary>
public sealed record ValueInfo(string Name, ValueKind Kind, DType DType, Shape Shape, long RowAlignment, TensorView? View)
{
    /// <summary>Bytes the value takes, its row padding included.</summary>
    public long Bytes => Shape.LeadingProduct * Shape.RoundUp(Shape[-1], RowAlignment) * DType.SizeOf();
}

/// <summary>
/// A recorded node: a name that says where it belongs (<c>image.layers.0.attn</c>), how many kernel
/// launches it makes, the values it reads and writes, and the launches themselves as a closure over
/// the plan's views (built once per plan, replayed with no allocation).
/// </summary>
public sealed record NodeInfo(string Name, int Launches, ValueId[] Reads, ValueId[] Writes, Action<PlanViews> Launch);

/// <summary>
/// Records a graph (ggml-style): builder calls check shapes and return values; no device memory is
/// touched until <see cref="ExecutionPlan.Build"/> places the temporaries. Not thread-safe: one
/// builder per plan being built.
/// </summary>
public sealed class GraphBuilder
{
    private readonly List<ValueInfo> _values = [];
    private readonly List<NodeInfo> _nodes = [];
    private readonly List<ValueId> _outputs = [];

    /// <summary>Every recorded value.</summary>
    public IReadOnlyList<ValueInfo> Values => _values;

    /// <summary>Every recorded node, in launch order.</summary>
    public IReadOnlyList<NodeInfo> Nodes => _nodes;

    /// <summary>Values marked as results.</summary>
    public IReadOnlyList<ValueId> Outputs => _outputs;

    /// <summary>A dense value the host writes before each run.</summary>
    public ValueId Input(string name, DType dtype, Shape shape) => Add(new ValueInfo(name, ValueKind.Input, dtype, shape, 1, null));

    /// <summary>An intermediate; rows padded to <paramref name="rowAlignment"/> elements (16 for GEMM outputs and residuals).</summary>
    public ValueId Temp(string name, Shape shape, long rowAlignment = Kernels.GemmKernel.PanelWidth, DType dtype = DType.F32) =>
        Add(new ValueInfo(name, ValueKind.Temp, dtype, shape, rowAlignment, null));

    /// <summary>A view the model owns, valid for the plan's lifetime.</summary>
    public ValueId External(string name, TensorView view) =>
        Add(new ValueInfo(name, ValueKind.External, view.DType, view.Shape, 1, view));

    /// <summary>Shape of a recorded value.</summary>
    public Shape ShapeOf(ValueId v) => _values[v.Index].Shape;

    /// <summary>Records a node.</summary>
    public void Node(string name, int launches, ValueId[] reads, ValueId[] writes, Action<PlanViews> launch)
    {
        foreach (var v in reads.Concat(writes))
            if ((uint)v.Index >= (uint)_values.Count) throw new ArgumentException($"node {name} uses an unknown value {v.Index}");
        _nodes.Add(new NodeInfo(name, launches, reads, writes, launch));
    }

    /// <summary>Marks a value as a result: it lives to the end of the run and can be read after it.</summary>
    public void Output(ValueId v) => _outputs.Add(v);

    private ValueId Add(ValueInfo info)
    {
        _values.Add(info);
        return new ValueId(_values.Count - 1);
    }
}
