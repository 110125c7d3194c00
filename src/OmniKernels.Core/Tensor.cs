using System.Buffers;
using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels;

/// <summary>
/// A device tensor that owns its memory. Ownership rule: whoever allocates a tensor disposes it;
/// <see cref="View"/> and everything taken from it are borrowed and valid only until then.
/// Disposing returns the memory to the context's <see cref="BufferPool"/> (no device free on the
/// hot path). A tensor is not thread-safe; its views may be read by many launches at once.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly DeviceContext _context;
    private MemoryBuffer1D<byte, Stride1D.Dense>? _buffer;

    private Tensor(DeviceContext context, MemoryBuffer1D<byte, Stride1D.Dense> buffer, TensorView view)
    {
        _context = context;
        _buffer = buffer;
        _view = view;
    }

    private readonly TensorView _view;

    /// <summary>
    /// Allocates an uninitialized tensor from the context's pool (poisoned when <see cref="BufferPool.PoisonRentals"/> is set). <paramref name="rowAlignment"/>
    /// pads the row pitch (stride of the second-to-last dimension) to a multiple of that many
    /// elements, and the storage to whole padded rows, as the GEMM's unconditional tile stores need.
    /// </summary>
    public static Tensor Allocate(DeviceContext context, DType dtype, Shape shape, long rowAlignment = 1)
    {
        ArgumentNullException.ThrowIfNull(context);
        var strides = shape.RowMajorStrides(rowAlignment);
        long elements = shape.LeadingProduct * Shape.RoundUp(shape[-1], rowAlignment);
        var buffer = context.Pool.Rent(elements * dtype.SizeOf());
        try
        {
            var view = new TensorView(buffer.View, dtype, shape, strides);
            if (BufferPool.PoisonRentals) buffer.View.MemSet(context.Stream, BufferPool.PoisonByte(dtype));
            return new Tensor(context, buffer, view);
        }
        catch
        {
            context.Pool.Return(buffer);
            throw;
        }
    }

    /// <summary>Allocates a tensor and copies dense row-major host data into it.</summary>
    public static Tensor FromHost<T>(DeviceContext context, ReadOnlySpan<T> data, Shape shape, long rowAlignment = 1)
        where T : unmanaged
    {
        var t = Allocate(context, DTypeInfo.Of<T>(), shape, rowAlignment);
        try
        {
            t.CopyFromHost(data);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>The borrowed view of the whole tensor.</summary>
    public TensorView View
    {
        get
        {
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _view;
        }
    }

    /// <summary>Extents.</summary>
    public Shape Shape => _view.Shape;

    /// <summary>Element type.</summary>
    public DType DType => _view.DType;

    /// <summary>The context the tensor lives on.</summary>
    public DeviceContext Context => _context;

    /// <summary>
    /// Copies dense row-major host data in (synchronous). Padding between rows is left as it was.
    /// </summary>
    public void CopyFromHost<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var view = View;
        CheckHost<T>(data.Length);
        long pitch = view.Strides[-1] == 1 && view.Shape.Rank > 1 ? view.Strides[-2] : view.Shape[-1];
        var target = view.Elements<T>();
        if (pitch == view.Shape[-1])
        {
            target.SubView(0, data.Length).CopyFromCPU(_context.Stream, data);
            return;
        }
        long rows = view.Shape.LeadingProduct, cols = view.Shape[-1];
        var staging = ArrayPool<T>.Shared.Rent(checked((int)(rows * pitch)));
        try
        {
            // Read the device rows first so that their padding keeps its contents.
            target.SubView(0, rows * pitch).CopyToCPU(_context.Stream, staging.AsSpan(0, (int)(rows * pitch)));
            for (long r = 0; r < rows; r++)
                data.Slice((int)(r * cols), (int)cols).CopyTo(staging.AsSpan((int)(r * pitch), (int)cols));
            target.SubView(0, rows * pitch).CopyFromCPU(_context.Stream, staging.AsSpan(0, (int)(rows * pitch)));
        }
        finally
        {
            ArrayPool<T>.Shared.Return(staging);
        }
    }

    /// <summary>Copies the tensor out as dense row-major host data (synchronous), dropping row padding.</summary>
    public void CopyToHost<T>(Span<T> data) where T : unmanaged
    {
        var view = View;
        CheckHost<T>(data.Length);
        long pitch = view.Strides[-1] == 1 && view.Shape.Rank > 1 ? view.Strides[-2] : view.Shape[-1];
        var source = view.Elements<T>();
        if (pitch == view.Shape[-1])
        {
            source.SubView(0, data.Length).CopyToCPU(_context.Stream, data);
            return;
        }
        long rows = view.Shape.LeadingProduct, cols = view.Shape[-1];
        var staging = ArrayPool<T>.Shared.Rent(checked((int)(rows * pitch)));
        try
        {
            source.SubView(0, rows * pitch).CopyToCPU(_context.Stream, staging.AsSpan(0, (int)(rows * pitch)));
            for (long r = 0; r < rows; r++)
                staging.AsSpan((int)(r * pitch), (int)cols).CopyTo(data.Slice((int)(r * cols), (int)cols));
        }
        finally
        {
            ArrayPool<T>.Shared.Return(staging);
        }
    }

    /// <summary>Copies the tensor out into a new dense host array.</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        var a = new T[Shape.Numel];
        CopyToHost<T>(a);
        return a;
    }

    private void CheckHost<T>(int length) where T : unmanaged
    {
        if (DTypeInfo.Of<T>() != DType)
            throw new ArgumentException($"host data of {typeof(T).Name} for a {DType} tensor");
        if (length != Shape.Numel)
            throw new ArgumentException($"host data has {length} elements; tensor {Shape} has {Shape.Numel}");
        if (Shape.Rank > 1 && _view.Strides[-1] != 1)
            throw new NotSupportedException("host copies need rows with unit stride");
    }

    /// <summary>Returns the memory to the pool. Idempotent.</summary>
    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null) _context.Pool.Return(b);
    }
}
