namespace OmniKernels.Ops;

/// <summary>One named input of an op.</summary>
/// <param name="Name">As given to <c>--in NAME=FILE.npy</c>.</param>
/// <param name="Required">False for optional inputs (bias, residual, ...).</param>
/// <param name="Doc">Shape and meaning.</param>
public sealed record OpInputSpec(string Name, bool Required, string Doc);

/// <summary>
/// A kernel exposed by name: to <c>omni op</c>, to the parity tests and to benchmarks. Binding
/// checks inputs and parameters once and yields something that runs both on a device and on the
/// float64 reference. Registered in one place, <see cref="OpCatalog"/>.
/// </summary>
public abstract class OpDefinition
{
    /// <summary>Name on the command line.</summary>
    public abstract string Name { get; }

    /// <summary>One line for help output.</summary>
    public abstract string Summary { get; }

    /// <summary>Inputs, in order.</summary>
    public abstract IReadOnlyList<OpInputSpec> Inputs { get; }

    /// <summary>Parameter names with their defaults, for help and error messages.</summary>
    public abstract IReadOnlyList<string> ParamNames { get; }

    /// <summary>Checks inputs and parameters; throws <see cref="OpInputException"/> naming what is wrong.</summary>
    public BoundOp Bind(IReadOnlyDictionary<string, HostTensor> inputs, OpParams parameters)
    {
        foreach (var name in inputs.Keys)
            if (!Inputs.Any(i => i.Name == name))
                throw new OpInputException($"op '{Name}' has no input '{name}'; it takes: {string.Join(", ", Inputs.Select(i => i.Name))}");
        foreach (var spec in Inputs)
            if (spec.Required && !inputs.ContainsKey(spec.Name))
                throw new OpInputException($"op '{Name}' needs input '{spec.Name}': {spec.Doc}");
        foreach (var (name, t) in inputs)
            if (t.Shape.Any(d => d <= 0))
                throw new OpInputException($"{Name}: input '{name}' has shape {t.ShapeText}; every dimension must be positive");
        var bound = BindChecked(inputs, parameters);
        parameters.ThrowIfUnread(Name, ParamNames);
        return bound;
    }

    /// <summary>Op-specific checks once the set of inputs is known to be right.</summary>
    protected abstract BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams parameters);

    /// <summary>Throws unless <paramref name="t"/> has rank <paramref name="rank"/>.</summary>
    protected void RequireRank(HostTensor t, string name, params int[] rank)
    {
        if (!rank.Contains(t.Rank))
            throw new OpInputException($"{Name}: input '{name}' has shape {t.ShapeText}; expected rank {string.Join(" or ", rank)}");
    }
}

/// <summary>An op with checked inputs, ready to run on a device or on the reference.</summary>
public abstract class BoundOp
{
    /// <summary>Shape of the single output.</summary>
    public abstract long[] OutputShape { get; }

    /// <summary>Floating-point operations one run performs (for GFLOP/s).</summary>
    public abstract double Flops { get; }

    /// <summary>
    /// Uploads inputs, allocates an output poisoned with NaN (so an element the kernel fails to write
    /// shows), launches, synchronizes and downloads. Not the hot path: an execution plan keeps
    /// tensors resident and calls the launchers directly.
    /// </summary>
    public abstract float[] RunDevice(DeviceContext ctx);

    /// <summary>The float64 reference result.</summary>
    public abstract double[] RunReference();

    /// <summary>Element type of the output: F32 for most ops; I8 or I32 for integer ops, which run through the *Integers methods.</summary>
    public virtual DType OutputType => DType.F32;

    /// <summary>The device result of an integer op (I8 or I32 values as int).</summary>
    public virtual int[] RunDeviceIntegers(DeviceContext ctx) => throw new NotSupportedException($"{GetType().Name} has a float output");

    /// <summary>The exact integer reference of an integer op.</summary>
    public virtual int[] RunReferenceIntegers() => throw new NotSupportedException($"{GetType().Name} has a float output");

    /// <summary>Further outputs a run produced (file path given by a parameter, float data, shape), written by the caller.</summary>
    public virtual IReadOnlyList<(string Path, float[] Data, long[] Shape)> SideOutputs => [];
}
