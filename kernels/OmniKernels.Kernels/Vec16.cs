using ILGPU;

namespace OmniKernels.Kernels;

/// <summary>
/// Sixteen floats as SSA values: one row of a register tile (GEMM) or sixteen query rows as lanes
/// (attention), which LLVM's SLP vectorizer packs into SIMD registers. Every operation is written
/// out per lane, unconditionally, because SLP starts from consecutive stores and straight-line code.
/// </summary>
internal struct Vec16
{
    public float X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15;

    public static Vec16 Load(ArrayView<float> v, long o)
    {
        Vec16 r;
        r.X0 = v[o]; r.X1 = v[o + 1]; r.X2 = v[o + 2]; r.X3 = v[o + 3];
        r.X4 = v[o + 4]; r.X5 = v[o + 5]; r.X6 = v[o + 6]; r.X7 = v[o + 7];
        r.X8 = v[o + 8]; r.X9 = v[o + 9]; r.X10 = v[o + 10]; r.X11 = v[o + 11];
        r.X12 = v[o + 12]; r.X13 = v[o + 13]; r.X14 = v[o + 14]; r.X15 = v[o + 15];
        return r;
    }

    /// <summary>Lane i reads v[first + min(i, count − 1)·stride]: sixteen rows, the ones past the end clamped to the last.</summary>
    public static Vec16 LoadRows(ArrayView<float> v, long first, long stride, long count)
    {
        long last = count - 1;
        Vec16 r;
        r.X0 = v[first]; r.X1 = v[first + Min(1, last) * stride]; r.X2 = v[first + Min(2, last) * stride]; r.X3 = v[first + Min(3, last) * stride];
        r.X4 = v[first + Min(4, last) * stride]; r.X5 = v[first + Min(5, last) * stride]; r.X6 = v[first + Min(6, last) * stride]; r.X7 = v[first + Min(7, last) * stride];
        r.X8 = v[first + Min(8, last) * stride]; r.X9 = v[first + Min(9, last) * stride]; r.X10 = v[first + Min(10, last) * stride]; r.X11 = v[first + Min(11, last) * stride];
        r.X12 = v[first + Min(12, last) * stride]; r.X13 = v[first + Min(13, last) * stride]; r.X14 = v[first + Min(14, last) * stride]; r.X15 = v[first + Min(15, last) * stride];
        return r;
    }

    private static long Min(long a, long b) => a < b ? a : b;

    public readonly void Store(ArrayView<float> v, long o)
    {
        v[o] = X0; v[o + 1] = X1; v[o + 2] = X2; v[o + 3] = X3;
        v[o + 4] = X4; v[o + 5] = X5; v[o + 6] = X6; v[o + 7] = X7;
        v[o + 8] = X8; v[o + 9] = X9; v[o + 10] = X10; v[o + 11] = X11;
        v[o + 12] = X12; v[o + 13] = X13; v[o + 14] = X14; v[o + 15] = X15;
    }

    /// <summary>Lane i to v[first + min(i, count − 1)·stride]: the stores of <see cref="LoadRows"/>; lanes past the end repeat the last one.</summary>
    public readonly void StoreRows(ArrayView<float> v, long first, long stride, long count)
    {
        long last = count - 1;
        v[first] = X0; v[first + Min(1, last) * stride] = X1; v[first + Min(2, last) * stride] = X2; v[first + Min(3, last) * stride] = X3;
        v[first + Min(4, last) * stride] = X4; v[first + Min(5, last) * stride] = X5; v[first + Min(6, last) * stride] = X6; v[first + Min(7, last) * stride] = X7;
        v[first + Min(8, last) * stride] = X8; v[first + Min(9, last) * stride] = X9; v[first + Min(10, last) * stride] = X10; v[first + Min(11, last) * stride] = X11;
        v[first + Min(12, last) * stride] = X12; v[first + Min(13, last) * stride] = X13; v[first + Min(14, last) * stride] = X14; v[first + Min(15, last) * stride] = X15;
    }

    public void Fma<TMul>(float a, in Vec16 b) where TMul : struct, IMulAdd
    {
        var m = default(TMul);
        X0 = m.Apply(a, b.X0, X0); X1 = m.Apply(a, b.X1, X1); X2 = m.Apply(a, b.X2, X2); X3 = m.Apply(a, b.X3, X3);
        X4 = m.Apply(a, b.X4, X4); X5 = m.Apply(a, b.X5, X5); X6 = m.Apply(a, b.X6, X6); X7 = m.Apply(a, b.X7, X7);
        X8 = m.Apply(a, b.X8, X8); X9 = m.Apply(a, b.X9, X9); X10 = m.Apply(a, b.X10, X10); X11 = m.Apply(a, b.X11, X11);
        X12 = m.Apply(a, b.X12, X12); X13 = m.Apply(a, b.X13, X13); X14 = m.Apply(a, b.X14, X14); X15 = m.Apply(a, b.X15, X15);
    }

    public void Zip<TOp>(in Vec16 b) where TOp : struct, IBinaryOp
    {
        var f = default(TOp);
        X0 = f.Apply(X0, b.X0); X1 = f.Apply(X1, b.X1); X2 = f.Apply(X2, b.X2); X3 = f.Apply(X3, b.X3);
        X4 = f.Apply(X4, b.X4); X5 = f.Apply(X5, b.X5); X6 = f.Apply(X6, b.X6); X7 = f.Apply(X7, b.X7);
        X8 = f.Apply(X8, b.X8); X9 = f.Apply(X9, b.X9); X10 = f.Apply(X10, b.X10); X11 = f.Apply(X11, b.X11);
        X12 = f.Apply(X12, b.X12); X13 = f.Apply(X13, b.X13); X14 = f.Apply(X14, b.X14); X15 = f.Apply(X15, b.X15);
    }

    /// <summary>((X0 op X1) op X2) … op X15: a horizontal reduction, once per row.</summary>
    public readonly float Reduce<TOp>() where TOp : struct, IBinaryOp
    {
        var f = default(TOp);
        float a = f.Apply(f.Apply(f.Apply(X0, X1), f.Apply(X2, X3)), f.Apply(f.Apply(X4, X5), f.Apply(X6, X7)));
        float b = f.Apply(f.Apply(f.Apply(X8, X9), f.Apply(X10, X11)), f.Apply(f.Apply(X12, X13), f.Apply(X14, X15)));
        return f.Apply(a, b);
    }

    public void Scale(float a)
    {
        X0 *= a; X1 *= a; X2 *= a; X3 *= a; X4 *= a; X5 *= a; X6 *= a; X7 *= a;
        X8 *= a; X9 *= a; X10 *= a; X11 *= a; X12 *= a; X13 *= a; X14 *= a; X15 *= a;
    }

    public static Vec16 Broadcast(float a)
    {
        Vec16 r;
        r.X0 = a; r.X1 = a; r.X2 = a; r.X3 = a; r.X4 = a; r.X5 = a; r.X6 = a; r.X7 = a;
        r.X8 = a; r.X9 = a; r.X10 = a; r.X11 = a; r.X12 = a; r.X13 = a; r.X14 = a; r.X15 = a;
        return r;
    }

    private const float HugeSlope = 2e30f;

    /// <summary>
    /// Lane i keeps its value where <paramref name="key"/> &lt; limit.Xi (integers as floats) and
    /// drops to at most −1e30 elsewhere: min(x, 2e30·(limit − key − ½)) is branch-free, so it vectorizes.
    /// </summary>
    public void MaskFrom(float key, in Vec16 limit)
    {
        key += 0.5f;
        X0 = MathF.Min(X0, HugeSlope * (limit.X0 - key)); X1 = MathF.Min(X1, HugeSlope * (limit.X1 - key)); X2 = MathF.Min(X2, HugeSlope * (limit.X2 - key)); X3 = MathF.Min(X3, HugeSlope * (limit.X3 - key));
        X4 = MathF.Min(X4, HugeSlope * (limit.X4 - key)); X5 = MathF.Min(X5, HugeSlope * (limit.X5 - key)); X6 = MathF.Min(X6, HugeSlope * (limit.X6 - key)); X7 = MathF.Min(X7, HugeSlope * (limit.X7 - key));
        X8 = MathF.Min(X8, HugeSlope * (limit.X8 - key)); X9 = MathF.Min(X9, HugeSlope * (limit.X9 - key)); X10 = MathF.Min(X10, HugeSlope * (limit.X10 - key)); X11 = MathF.Min(X11, HugeSlope * (limit.X11 - key));
        X12 = MathF.Min(X12, HugeSlope * (limit.X12 - key)); X13 = MathF.Min(X13, HugeSlope * (limit.X13 - key)); X14 = MathF.Min(X14, HugeSlope * (limit.X14 - key)); X15 = MathF.Min(X15, HugeSlope * (limit.X15 - key));
    }

    public void Apply<TAct>() where TAct : struct, IActivation
    {
        var f = default(TAct);
        X0 = f.Apply(X0); X1 = f.Apply(X1); X2 = f.Apply(X2); X3 = f.Apply(X3);
        X4 = f.Apply(X4); X5 = f.Apply(X5); X6 = f.Apply(X6); X7 = f.Apply(X7);
        X8 = f.Apply(X8); X9 = f.Apply(X9); X10 = f.Apply(X10); X11 = f.Apply(X11);
        X12 = f.Apply(X12); X13 = f.Apply(X13); X14 = f.Apply(X14); X15 = f.Apply(X15);
    }
}
