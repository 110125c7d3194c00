using System.Runtime.CompilerServices;

namespace OmniKernels;

/// <summary>
/// Up to four extents (or strides, in elements), stored inline so that a shape never allocates.
/// Row-major: the last dimension varies fastest.
/// </summary>
public readonly struct Shape : IEquatable<Shape>
{
    /// <summary>The largest rank a tensor may have.</summary>
    public const int MaxRank = 4;

    [InlineArray(MaxRank)]
    private struct Dims
    {
        private long _first;
    }

    private readonly Dims _dims;

    /// <summary>Number of dimensions.</summary>
    public int Rank { get; }

    /// <summary>Creates a shape from its extents; each must be positive.</summary>
    public Shape(params ReadOnlySpan<long> dims)
    {
        if (dims.Length is 0 or > MaxRank)
            throw new ArgumentException($"a shape has 1 to {MaxRank} dimensions, got {dims.Length}", nameof(dims));
        Rank = dims.Length;
        for (int i = 0; i < dims.Length; i++)
            _dims[i] = dims[i];
    }

    /// <summary>Extent (or stride) of dimension <paramref name="i"/>; negative counts from the end.</summary>
    public long this[int i]
    {
        get
        {
            if (i < 0) i += Rank;
            if ((uint)i >= (uint)Rank)
                throw new ArgumentOutOfRangeException(nameof(i), i, $"dimension of a rank-{Rank} shape");
            return _dims[i];
        }
    }

    /// <summary>Product of the extents.</summary>
    public long Numel
    {
        get
        {
            long n = 1;
            for (int i = 0; i < Rank; i++) n *= _dims[i];
            return n;
        }
    }

    /// <summary>Product of all extents but the last (the number of rows of a row-major tensor).</summary>
    public long LeadingProduct
    {
        get
        {
            long n = 1;
            for (int i = 0; i < Rank - 1; i++) n *= _dims[i];
            return n;
        }
    }

    /// <summary>Row-major strides for this shape, with the second-to-last stride (the row pitch) padded to a multiple of <paramref name="rowAlignment"/>.</summary>
    public Shape RowMajorStrides(long rowAlignment = 1)
    {
        Span<long> s = stackalloc long[Rank];
        long stride = 1;
        for (int i = Rank - 1; i >= 0; i--)
        {
            s[i] = stride;
            stride *= i == Rank - 1 ? RoundUp(_dims[i], rowAlignment) : _dims[i];
        }
        return new Shape(s);
    }

    /// <summary>Rounds <paramref name="value"/> up to a multiple of <paramref name="multiple"/>.</summary>
    public static long RoundUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;

    /// <inheritdoc/>
    public bool Equals(Shape other)
    {
        if (Rank != other.Rank) return false;
        for (int i = 0; i < Rank; i++)
            if (_dims[i] != other._dims[i]) return false;
        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        for (int i = 0; i < Rank; i++) h.Add(_dims[i]);
        return h.ToHashCode();
    }

    /// <summary>Equality of rank and extents.</summary>
    public static bool operator ==(Shape a, Shape b) => a.Equals(b);

    /// <summary>Inequality of rank or extents.</summary>
    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    /// <summary>Prints as [a, b, c].</summary>
    public override string ToString()
    {
        var parts = new string[Rank];
        for (int i = 0; i < Rank; i++) parts[i] = _dims[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "[" + string.Join(", ", parts) + "]";
    }
}
