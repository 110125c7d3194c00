using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels;

/// <summary>
/// Caches freed device buffers by size class and hands them out again, so that steady-state
/// inference allocates no device memory (tinygrad's LRU allocator). Thread-safe.
/// Buffers rented here are owned by the renter until returned; <see cref="Tensor"/> does both.
/// </summary>
public sealed class BufferPool : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> _free = new();
    private readonly Lock _lock = new();
    private bool _disposed;

    internal BufferPool(Accelerator accelerator) => _accelerator = accelerator;

    /// <summary>
    /// Process-wide debugging switch, off by default (the test suite turns it on for its whole run):
    /// when set, every <see cref="Tensor"/> allocation fills its buffer before handing it out, floating
    /// point with NaN (every byte 0xFF) and integers with a sentinel (every byte 0x80: −128 as int8,
    /// −2139062144 as int32), so that an element a kernel never writes shows up instead of keeping the
    /// correct answer a reused buffer still holds. Set it before creating tensors; it is read on each
    /// allocation (off: one branch; on: one device fill of the whole size class, queued on the stream).
    /// </summary>
    public static bool PoisonRentals { get; set; }

    /// <summary>The byte <see cref="PoisonRentals"/> fills a buffer of <paramref name="dtype"/> with.</summary>
    public static byte PoisonByte(DType dtype) => dtype is DType.F32 or DType.F16 ? (byte)0xFF : (byte)0x80;

    /// <summary>Bytes currently rented out.</summary>
    public long BytesInUse { get; private set; }

    /// <summary>Largest <see cref="BytesInUse"/> since creation or the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytesInUse { get; private set; }

    /// <summary>Bytes held in the free lists, ready for reuse.</summary>
    public long BytesCached { get; private set; }

    /// <summary>Number of allocations made on the device (cache misses).</summary>
    public long DeviceAllocations { get; private set; }

    /// <summary>Restarts <see cref="PeakBytesInUse"/> from the current use.</summary>
    public void ResetPeak()
    {
        lock (_lock) PeakBytesInUse = BytesInUse;
    }

    /// <summary>
    /// Size classes: eight steps per power of two above 4 KiB, so a reused buffer wastes at most 12.5%.
    /// </summary>
    internal static long SizeClass(long bytes)
    {
        if (bytes <= 4096) return 4096;
        int log = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1));
        long step = 1L << (log - 3);
        return Shape.RoundUp(bytes, step);
    }

    /// <summary>Rents a buffer of at least <paramref name="bytes"/> bytes; its contents are undefined.</summary>
    public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        long size = SizeClass(bytes);
        MemoryBuffer1D<byte, Stride1D.Dense>? buffer = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                buffer = stack.Pop();
                BytesCached -= size;
            }
        }
        if (buffer is null)
        {
            try
            {
                buffer = _accelerator.Allocate1D<byte>(size);
            }
            catch (Exception e) when (e is OutOfMemoryException or AcceleratorException)
            {
                // Cached buffers may be what fills the device: free them and retry once.
                Trim();
                buffer = _accelerator.Allocate1D<byte>(size);
            }
            lock (_lock) DeviceAllocations++;
        }
        lock (_lock)
        {
            BytesInUse += size;
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
        }
        return buffer;
    }

    /// <summary>Gives a rented buffer back for reuse. The caller must not touch it afterwards.</summary>
    public void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer)
    {
        lock (_lock)
        {
            BytesInUse -= buffer.Length;
            if (_disposed)
            {
                buffer.Dispose();
                return;
            }
            if (!_free.TryGetValue(buffer.Length, out var stack))
                _free[buffer.Length] = stack = new Stack<MemoryBuffer1D<byte, Stride1D.Dense>>();
            stack.Push(buffer);
            BytesCached += buffer.Length;
        }
    }

    /// <summary>Frees every cached buffer back to the device.</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (var stack in _free.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            _free.Clear();
            BytesCached = 0;
        }
    }

    /// <summary>Frees the cache; buffers still rented are freed when returned.</summary>
    public void Dispose()
    {
        Trim();
        lock (_lock) _disposed = true;
    }
}
