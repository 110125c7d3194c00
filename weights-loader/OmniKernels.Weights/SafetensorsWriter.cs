using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OmniKernels.Weights;

/// <summary>
/// Collects tensors and writes one safetensors file the way the format's reference implementation lays it out:
/// the JSON header (<c>__metadata__</c> first) padded with spaces to a multiple of 8 bytes, then the tensors
/// contiguous, ordered by element size (largest first) and then by name, so that every tensor starts at a
/// multiple of its element size. <see cref="Add"/> copies the bytes it is given. Not thread-safe.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly Dictionary<string, (SafetensorsDType DType, long[] Shape, byte[] Data)> _tensors = new(StringComparer.Ordinal);

    /// <summary>An empty writer.</summary>
    public SafetensorsWriter() { }

    /// <summary>The <c>__metadata__</c> to write (string to string; omitted when empty).</summary>
    public IDictionary<string, string> Metadata { get; } = new SortedDictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The number of tensors added.</summary>
    public int Count => _tensors.Count;

    /// <summary>The bytes of all tensors added (the data area's size; what an index's <c>total_size</c> counts).</summary>
    public long DataLength => _tensors.Values.Sum(t => (long)t.Data.Length);

    /// <summary>
    /// Adds a tensor of <paramref name="dtype"/> and <paramref name="shape"/> (empty for a scalar) whose
    /// little-endian bytes are <paramref name="data"/> (copied).
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, reserved or already added, a dimension is negative, or the byte count does not match.</exception>
    public void Add(string name, SafetensorsDType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == SafetensorsHeader.MetadataKey)
            throw new ArgumentException($"'{name}' is reserved for the metadata", nameof(name));
        if (_tensors.ContainsKey(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        long bytes = dtype.Size();
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': dimension {d} is negative", nameof(shape));
            bytes = checked(bytes * d);
        }
        if (bytes != data.Length)
            throw new ArgumentException($"tensor '{name}': {dtype.Name()} {TensorInfo.FormatShape(shape)} needs {bytes} bytes, got {data.Length}", nameof(data));
        _tensors.Add(name, (dtype, shape.ToArray(), data.ToArray()));
    }

    /// <summary>Adds an F32 tensor (copied).</summary>
    public void AddFloat32(string name, ReadOnlySpan<long> shape, ReadOnlySpan<float> data) =>
        Add(name, SafetensorsDType.F32, shape, MemoryMarshal.AsBytes(data));

    /// <summary>
    /// Writes the file atomically: the bytes go to a temporary file beside <paramref name="path"/>, which then
    /// replaces it; on any failure the temporary file is deleted and <paramref name="path"/> is left as it was.
    /// Returns the number of bytes written.
    /// </summary>
    /// <exception cref="IOException">The folder does not exist or the file cannot be written.</exception>
    public long Write(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{full}: folder does not exist");
        if (Directory.Exists(full))
            throw new IOException($"{full} is a folder");

        var order = _tensors.OrderByDescending(t => t.Value.DType.Size()).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();
        byte[] header = Header(order);
        string temp = Path.Combine(folder, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            long written;
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Span<byte> length = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var (_, t) in order) stream.Write(t.Data);
                stream.Flush(flushToDisk: true);
                written = stream.Length;
            }
            File.Move(temp, full, overwrite: true);
            return written;
        }
        catch
        {
            try { File.Delete(temp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* keep the original error */ }
            throw;
        }
    }

    private byte[] Header(List<KeyValuePair<string, (SafetensorsDType DType, long[] Shape, byte[] Data)>> order)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Names are written as raw UTF-8 like the reference implementation's, not \u-escaped (the header is no HTML).
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (Metadata.Count > 0)
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (k, v) in Metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in order)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", t.DType.Name());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.Length;
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        if (padded > SafetensorsHeader.MaxHeaderLength)
            throw new InvalidOperationException($"the header would be {padded} bytes, over the format's {SafetensorsHeader.MaxHeaderLength}-byte cap");
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }
}
