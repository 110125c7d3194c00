using ILGPU.Runtime;
using NUnit.Framework;

namespace OmniKernels.Tests;

/// <summary>
/// The run-wide output poisoning the suite rests on (<see cref="BufferPool.PoisonRentals"/>, switched on by
/// <see cref="Backends"/>): every tensor starts as NaN or the integer sentinel, even one that reuses a buffer
/// a previous tensor filled with correct values, row padding included.
/// </summary>
[TestFixture]
public sealed class PoisonTests
{
    [TestCaseSource(typeof(Backends), nameof(Backends.Names))]
    public void ReusedBuffersComeBackPoisoned(string backend)
    {
        var ctx = Backends.Get(backend);
        Assert.That(BufferPool.PoisonRentals, Is.True, "the suite must run with poisoned outputs");
        var shape = new Shape(5, 37);
        var values = RandomInputs.Uniform(3, shape.Numel);
        using (Tensor.FromHost<float>(ctx, values, shape, 16)) { }
        using (var again = Tensor.Allocate(ctx, DType.F32, shape, 16))
        {
            // The whole buffer, padding included: a kernel that writes only part of a row leaves NaN.
            var raw = new float[again.View.Capacity];
            again.View.Elements<float>().SubView(0, raw.Length).CopyToCPU(ctx.Stream, raw);
            Assert.That(raw, Has.All.NaN);
        }

        using (Tensor.FromHost<int>(ctx, Enumerable.Range(1, 185).ToArray(), shape)) { }
        using (var ints = Tensor.Allocate(ctx, DType.I32, shape))
            Assert.That(ints.ToArray<int>(), Has.All.EqualTo(unchecked((int)0x80808080)));

        using (Tensor.FromHost<sbyte>(ctx, Enumerable.Range(0, 185).Select(i => (sbyte)(i % 100)).ToArray(), shape)) { }
        using (var bytes = Tensor.Allocate(ctx, DType.I8, shape))
            Assert.That(bytes.ToArray<sbyte>(), Has.All.EqualTo(sbyte.MinValue), "int8 sentinel: −128, which symmetric quantization never produces");
    }
}
