using ILGPU;
using ILGPU.Runtime;
using System.Diagnostics;

namespace OmniKernels.Graph;

/// <summary>The views of a plan's values, by id: what a node's launch closure reads.</summary>
public sealed class PlanViews
{
    private readonly TensorView[] _views;

    internal PlanViews(DeviceContext device, TensorView[] views)
    {
        Device = device;
        _views = views;
    }

    /// <summary>The device the plan launches on.</summary>
    public DeviceContext Device { get; }

    /// <summary>The view of <paramref name="v"/>.</summary>
    public TensorView this[ValueId v] => _views[v.Index];
}

/// <summary>Launch count and time of one node over the runs a profile saw.</summary>
public sealed record NodeProfile(string Name, int Launches, double Milliseconds);

/// <summary>Collects per-node launches and times; a run given a profile synchronizes after every node to time it.</summary>
public sealed class Profile
{
    private readonly List<NodeProfile> _nodes = [];

    /// <summary>Nodes in the order they ran (one entry per node per run).</summary>
    public IReadOnlyList<NodeProfile> Nodes => _nodes;

    /// <summary>Adds a node that ran.</summary>
    public void Add(string name, int launches, double ms)
    {
        lock (_nodes) _nodes.Add(new NodeProfile(name, launches, ms));
    }
}

/// <summary>
/// A recorded graph made runnable for one signature (tinygrad's plan): only the nodes the outputs
/// need, every temporary placed by liveness into one arena allocated once, launch closures replayed
/// by <see cref="Run"/> with no device allocation and no compile. Owns its arena: dispose it.
/// Not thread-safe: one run at a time (the session serializes its device work).
/// </summary>
public sealed class ExecutionPlan : IDisposable
{
    private const long Alignment = 256;
    private readonly DeviceContext _ctx;
    private readonly Tensor? _arena;
    private readonly NodeInfo[] _nodes;
    private readonly ValueInfo[] _values;

    private ExecutionPlan(DeviceContext ctx, Tensor? arena, NodeInfo[] nodes, ValueInfo[] values, PlanViews views, long intermediate)
    {
        _ctx = ctx;
        _arena = arena;
        _nodes = nodes;
        _values = values;
        Views = views;
        IntermediateBytes = intermediate;
    }

    /// <summary>Views of every value (weights included).</summary>
    public PlanViews Views { get; }

    /// <summary>Bytes of the arena that holds every input and temporary.</summary>
    public long ArenaBytes => _arena is null ? 0 : _arena.Shape.Numel;

    /// <summary>Bytes the placed values would take if none shared memory.</summary>
    public long IntermediateBytes { get; }

    /// <summary>The nodes a run launches, in order.</summary>
    public IReadOnlyList<NodeInfo> Nodes => _nodes;

    /// <summary>Kernel launches of one run.</summary>
    public int Launches => _nodes.Sum(n => n.Launches);

    /// <summary>
    /// Keeps the nodes the builder's outputs depend on, places inputs and temporaries by liveness
    /// (a value lives from the first node that touches it to the last; inputs from the start, outputs
    /// to the end) into one arena, and materializes the views.
    /// </summary>
    public static ExecutionPlan Build(DeviceContext ctx, GraphBuilder graph)
    {
        var values = graph.Values.ToArray();
        var needed = new bool[values.Length];
        foreach (var o in graph.Outputs) needed[o.Index] = true;
        var keep = new bool[graph.Nodes.Count];
        for (int i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var n = graph.Nodes[i];
            if (!n.Writes.Any(w => needed[w.Index])) continue;
            keep[i] = true;
            foreach (var r in n.Reads) needed[r.Index] = true;
        }
        var nodes = graph.Nodes.Where((_, i) => keep[i]).ToArray();

        int count = nodes.Length;
        var first = Enumerable.Repeat(int.MaxValue, values.Length).ToArray();
        var last = Enumerable.Repeat(-1, values.Length).ToArray();
        for (int i = 0; i < count; i++)
            foreach (var v in nodes[i].Reads.Concat(nodes[i].Writes))
            {
                first[v.Index] = Math.Min(first[v.Index], i);
                last[v.Index] = Math.Max(last[v.Index], i);
            }
        for (int v = 0; v < values.Length; v++)
        {
            if (values[v].Kind == ValueKind.Input && last[v] >= 0) first[v] = -1;
            if (graph.Outputs.Any(o => o.Index == v)) last[v] = count;
        }

        // Greedy first fit, largest first: each value takes the lowest offset free over its lifetime.
        var placed = new List<(long Off, long End, int First, int Last)>();
        var offsets = new long[values.Length];
        long arenaBytes = 0, intermediate = 0;
        foreach (int v in Enumerable.Range(0, values.Length)
                     .Where(v => values[v].Kind != ValueKind.External && last[v] >= 0)
                     .OrderByDescending(v => values[v].Bytes).ThenBy(v => v))
        {
            long size = Shape.RoundUp(values[v].Bytes, Alignment);
            intermediate += size;
            long off = 0;
            foreach (var p in placed.Where(p => p.First <= last[v] && first[v] <= p.Last).OrderBy(p => p.Off))
                if (off + size > p.Off && off < p.End) off = Shape.RoundUp(p.End, Alignment);
            offsets[v] = off;
            placed.Add((off, off + size, first[v], last[v]));
            arenaBytes = Math.Max(arenaBytes, off + size);
        }

        var arena = arenaBytes > 0 ? Tensor.Allocate(ctx, DType.I8, new Shape(arenaBytes)) : null;
        try
        {
            var views = new TensorView[values.Length];
            for (int v = 0; v < values.Length; v++)
            {
                var info = values[v];
                if (info.Kind == ValueKind.External) views[v] = info.View!.Value;
                else if (last[v] >= 0)
                {
                    var strides = info.Shape.RowMajorStrides(info.RowAlignment);
                    views[v] = new TensorView(arena!.View.Storage, info.DType, info.Shape, strides, offsets[v] / info.DType.SizeOf());
                }
            }
            return new ExecutionPlan(ctx, arena, nodes, values, new PlanViews(ctx, views), intermediate);
        }
        catch
        {
            arena?.Dispose();
            throw;
        }
    }

    /// <summary>Copies dense host data into an input value (synchronous, as <see cref="Tensor.CopyFromHost"/>).</summary>
    public void Upload<T>(ValueId input, ReadOnlySpan<T> data) where T : unmanaged
    {
        var info = _values[input.Index];
        if (info.Kind != ValueKind.Input) throw new ArgumentException($"{info.Name} is not an input");
        if (data.Length != info.Shape.Numel) throw new ArgumentException($"{info.Name} {info.Shape} needs {info.Shape.Numel} values; got {data.Length}");
        Views[input].Elements<T>().SubView(0, data.Length).CopyFromCPU(_ctx.Stream, data);
    }

    /// <summary>Copies a value out as dense row-major host data (synchronous), dropping row padding.</summary>
    public void Download(ValueId v, Span<float> destination)
    {
        var view = Views[v];
        if (destination.Length != view.Shape.Numel) throw new ArgumentException($"{_values[v.Index].Name} {view.Shape} has {view.Shape.Numel} values; destination {destination.Length}");
        long cols = view.Shape[-1], rows = view.Shape.LeadingProduct, pitch = view.Shape.Rank > 1 ? view.Strides[-2] : cols;
        var src = view.Elements<float>();
        if (pitch == cols)
        {
            src.SubView(0, destination.Length).CopyToCPU(_ctx.Stream, destination);
            return;
        }
        for (long r = 0; r < rows; r++)
            src.SubView(r * pitch, cols).CopyToCPU(_ctx.Stream, destination.Slice((int)(r * cols), (int)cols));
    }

    /// <summary>Launches every node in order. With a profile, synchronizes after each node and records its time.</summary>
    public void Run(Profile? profile = null)
    {
        if (profile is null)
        {
            foreach (var n in _nodes) n.Launch(Views);
            return;
        }
        _ctx.Synchronize();
        foreach (var n in _nodes)
        {
            long t0 = Stopwatch.GetTimestamp();
            n.Launch(Views);
            _ctx.Synchronize();
            profile.Add(n.Name, n.Launches, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
    }

    /// <summary>Returns the arena to the pool.</summary>
    public void Dispose() => _arena?.Dispose();
}
