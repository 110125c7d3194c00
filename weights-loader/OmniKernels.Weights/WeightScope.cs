using System.Runtime.InteropServices;

namespace OmniKernels.Weights;

/// <summary>
/// A name prefix over a <see cref="WeightStore"/>, candle's <c>VarBuilder</c>:
/// <c>store.Scope("vision_model").Pp("encoder.layers.3").GetFloat32([out, in], "mlp.fc1.weight")</c>.
/// A value type holding the store and the prefix; valid while the store is open; thread-safe.
/// Every getter checks the shape and dtype and marks the tensor used (see <see cref="WeightStore.Unused"/>).
/// </summary>
public readonly struct WeightScope
{
    private readonly WeightStore _store;
    private readonly string _prefix;

    internal WeightScope(WeightStore store, string prefix)
    {
        _store = store;
        _prefix = prefix;
    }

    /// <summary>The prefix, without a trailing dot (empty at the root).</summary>
    public string Prefix => _prefix ?? "";

    /// <summary>A child scope: the prefix joined with <paramref name="name"/> by '.'.</summary>
    public WeightScope Pp(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new WeightScope(Store, Join(name));
    }

    /// <summary>True when the store holds <c>Prefix.name</c> (does not mark it used).</summary>
    public bool Contains(string name) => Store.Has(Join(name));

    /// <summary>The header entry of <c>Prefix.name</c> if there is one, without marking it used.</summary>
    public bool TryPeek(string name, out TensorInfo info)
    {
        info = Store.Peek(Join(name))!;
        return info is not null;
    }

    /// <summary>The header entry of <c>Prefix.name</c>; marks it used.</summary>
    /// <exception cref="SafetensorsFormatException">No such tensor: the message names the full name, the file(s) and names nearby.</exception>
    public TensorInfo Info(string name) => Store.Lookup(Join(name), markUsed: true).Info;

    /// <summary>
    /// <c>Prefix.name</c> converted to a new float32 array (from F32, F16, BF16 or F64), after checking its shape
    /// equals <paramref name="expectedShape"/>; marks it used.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">Missing, another shape ("expected [768, 3072], found [3072, 768] in FILE") or not a float dtype.</exception>
    public float[] GetFloat32(ReadOnlySpan<long> expectedShape, string name)
    {
        var (info, file) = Checked(expectedShape, name);
        var values = new float[checked((int)info.ElementCount)];
        file.ConvertToFloat32(info, values);
        return values;
    }

    /// <summary>
    /// Like <see cref="GetFloat32"/>, into a caller-given <paramref name="destination"/> whose length must be the
    /// element count (no allocation).
    /// </summary>
    public void ReadFloat32(ReadOnlySpan<long> expectedShape, string name, Span<float> destination)
    {
        var (info, file) = Checked(expectedShape, name);
        file.ConvertToFloat32(info, destination);
    }

    /// <summary><c>Prefix.name</c>, which must be I8 of <paramref name="expectedShape"/>, copied into a new array; marks it used.</summary>
    /// <exception cref="SafetensorsFormatException">Missing, another shape, or not I8.</exception>
    public sbyte[] GetInt8(ReadOnlySpan<long> expectedShape, string name)
    {
        var (info, file) = Checked(expectedShape, name);
        if (info.DType != SafetensorsDType.I8)
            throw new SafetensorsFormatException($"tensor '{info.Name}': expected I8, found {info.DType.Name()} in {info.FilePath}", info.FilePath, info.Name);
        return MemoryMarshal.Cast<byte, sbyte>(file.Bytes(info)).ToArray();
    }

    /// <summary>
    /// The raw bytes of <c>Prefix.name</c> after checking its shape and dtype, as a span over the mapping: valid
    /// while the store is open. Marks it used.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(ReadOnlySpan<long> expectedShape, SafetensorsDType expectedDType, string name)
    {
        var (info, file) = Checked(expectedShape, name);
        if (info.DType != expectedDType)
            throw new SafetensorsFormatException($"tensor '{info.Name}': expected {expectedDType.Name()}, found {info.DType.Name()} in {info.FilePath}", info.FilePath, info.Name);
        return file.Bytes(info);
    }

    /// <inheritdoc/>
    public override string ToString() => Prefix.Length == 0 ? "(root)" : Prefix;

    private WeightStore Store => _store ?? throw new InvalidOperationException("default(WeightScope) has no store; get scopes from WeightStore.Root or Scope");

    private string Join(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return Prefix.Length == 0 ? name : Prefix + "." + name;
    }

    private (TensorInfo Info, SafetensorsFile File) Checked(ReadOnlySpan<long> expectedShape, string name)
    {
        var entry = Store.Lookup(Join(name), markUsed: true);
        var info = entry.Info;
        if (!expectedShape.SequenceEqual(info.Shape))
            throw new SafetensorsFormatException(
                $"tensor '{info.Name}': expected {TensorInfo.FormatShape(expectedShape)}, found {info.ShapeText} in {info.FilePath}", info.FilePath, info.Name);
        return entry;
    }
}
