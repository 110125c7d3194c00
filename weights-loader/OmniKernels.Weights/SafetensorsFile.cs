using System.Collections.ObjectModel;
using System.IO.MemoryMappedFiles;

namespace OmniKernels.Weights;

/// <summary>
/// One safetensors file, memory-mapped read-only and fully validated by <see cref="Open"/> (see
/// <c>docs/weights.md</c> for what is checked). Reads after opening are thread-safe; <see cref="Dispose"/>
/// unmaps the file and must not race with reads. The file must not be truncated or rewritten in place
/// while open (replacing it by rename, as <see cref="SafetensorsWriter"/> does, is safe: the mapping keeps
/// the old contents).
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorInfo> _byName;
    private int _disposed;

    private SafetensorsFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer,
        TensorInfo[] tensors, Dictionary<string, string> metadata)
    {
        FilePath = path;
        Length = length;
        _map = map;
        _view = view;
        _base = basePointer;
        Tensors = Array.AsReadOnly(tensors);
        Metadata = new ReadOnlyDictionary<string, string>(metadata);
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor, sorted by name (ordinal).</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>
    /// Maps <paramref name="path"/> and validates its header. On any failure nothing stays open.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">The file is missing, unreadable or malformed; the message names the file, the tensor and the problem.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; this loader maps it without swapping");
        string full = Path.GetFullPath(path);
        FileStream stream;
        try
        {
            stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new SafetensorsFormatException($"{full}: cannot open: {e.Message}", full, null, e);
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* pointer = null;
        try
        {
            long length = stream.Length;
            if (length < 8)
                SafetensorsHeader.ReadLength([], length, full);
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            pointer += view.PointerOffset;
            long n = SafetensorsHeader.ReadLength(new ReadOnlySpan<byte>(pointer, 8), length, full);
            var (tensors, metadata) = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(pointer, checked((int)(8 + n))), length, full);
            return new SafetensorsFile(full, length, map, view, pointer, tensors, metadata);
        }
        catch (Exception e)
        {
            if (pointer != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (map != null) map.Dispose();
            else stream.Dispose();
            if (e is SafetensorsFormatException) throw;
            if (e is IOException or UnauthorizedAccessException)
                throw new SafetensorsFormatException($"{full}: cannot map: {e.Message}", full, null, e);
            throw;
        }
    }

    /// <summary>Looks up a tensor's header entry.</summary>
    public bool TryGetInfo(string name, out TensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out info!);
    }

    /// <summary>A tensor's header entry.</summary>
    /// <exception cref="SafetensorsFormatException">The file has no tensor of that name.</exception>
    public TensorInfo GetInfo(string name) =>
        TryGetInfo(name, out var info) ? info
            : throw new SafetensorsFormatException($"{FilePath}: no tensor '{name}'", FilePath, name);

    /// <summary>
    /// The raw little-endian bytes of a tensor, as a span over the mapping: no copy, valid only while this file is
    /// open (reading it after <see cref="Dispose"/> is undefined behaviour).
    /// </summary>
    /// <exception cref="SafetensorsFormatException">No such tensor, or it exceeds 2 GiB (a span's limit).</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    public ReadOnlySpan<byte> GetBytes(string name) => Bytes(GetInfo(name));

    internal ReadOnlySpan<byte> Bytes(TensorInfo info)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (info.ByteLength > int.MaxValue)
            throw new SafetensorsFormatException(
                $"{FilePath}: tensor '{info.Name}' is {info.ByteLength} bytes, more than one span (2 GiB) can address", FilePath, info.Name);
        return new ReadOnlySpan<byte>(_base + info.DataBegin, (int)info.ByteLength);
    }

    /// <summary>
    /// Converts a floating-point tensor (F32, F16, BF16 or F64) to float32 into <paramref name="destination"/>,
    /// whose length must equal the element count. F16 and BF16 widen exactly; F64 rounds to nearest.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">No such tensor, or its dtype is not a float type.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has the wrong length.</exception>
    public void ReadAsFloat32(string name, Span<float> destination) => ConvertToFloat32(GetInfo(name), destination);

    internal void ConvertToFloat32(TensorInfo info, Span<float> destination)
    {
        if (!info.DType.IsFloat())
            throw new SafetensorsFormatException(
                $"{FilePath}: tensor '{info.Name}' is {info.DType.Name()}; only F64, F32, F16 and BF16 convert to float32", FilePath, info.Name);
        if (destination.Length != info.ElementCount)
            throw new ArgumentException(
                $"tensor '{info.Name}' has {info.ElementCount} elements but the destination holds {destination.Length}", nameof(destination));
        Float32Conversion.Convert(info.DType, Bytes(info), destination);
    }

    /// <summary>Unmaps the file and closes its handle; spans from <see cref="GetBytes"/> become invalid. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
