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

    /// <summary>Lane i keeps its value where <paramref name="key"/> &lt; limit.Xi, else becomes <paramref name="masked"/>.</summary>
    public void MaskFrom(float key, in Vec16 limit, float masked)
    {
        X0 = key < limit.X0 ? X0 : masked; X1 = key < limit.X1 ? X1 : masked; X2 = key < limit.X2 ? X2 : masked; X3 = key < limit.X3 ? X3 : masked;
        X4 = key < limit.X4 ? X4 : masked; X5 = key < limit.X5 ? X5 : masked; X6 = key < limit.X6 ? X6 : masked; X7 = key < limit.X7 ? X7 : masked;
        X8 = key < limit.X8 ? X8 : masked; X9 = key < limit.X9 ? X9 : masked; X10 = key < limit.X10 ? X10 : masked; X11 = key < limit.X11 ? X11 : masked;
        X12 = key < limit.X12 ? X12 : masked; X13 = key < limit.X13 ? X13 : masked; X14 = key < limit.X14 ? X14 : masked; X15 = key < limit.X15 ? X15 : masked;
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
