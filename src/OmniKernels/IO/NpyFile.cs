using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace OmniKernels.IO;

/// <summary>Element types an <see cref="NpyArray"/> can hold.</summary>
public enum NpyDType
{
    /// <summary>IEEE 754 binary32 (NumPy <c>'&lt;f4'</c>).</summary>
    Float32,
    /// <summary>IEEE 754 binary64 (NumPy <c>'&lt;f8'</c>).</summary>
    Float64,
    /// <summary>Signed 8-bit integer (NumPy <c>'|i1'</c>).</summary>
    Int8,
    /// <summary>Signed 32-bit integer (NumPy <c>'&lt;i4'</c>).</summary>
    Int32,
}

/// <summary>A C-ordered n-dimensional array as stored in a <c>.npy</c> file.</summary>
public sealed class NpyArray
{
    private readonly long[] _shape;

    /// <summary>
    /// Wraps <paramref name="data"/> (a <c>float[]</c>, <c>double[]</c>, <c>sbyte[]</c> or <c>int[]</c> matching
    /// <paramref name="dtype"/>, not copied) as an array of the given shape. An empty shape is a scalar.
    /// </summary>
    /// <exception cref="ArgumentException">The element type, shape or length does not fit.</exception>
    public NpyArray(NpyDType dtype, long[] shape, Array data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        Type expected = NpyFile.ElementType(dtype)
            ?? throw new ArgumentException($"unknown dtype {(int)dtype}", nameof(dtype));
        if (data.GetType() != expected.MakeArrayType())
            throw new ArgumentException(
                $"dtype {NpyFile.DTypeName(dtype)} needs a {expected.Name}[] but data is {data.GetType().Name}", nameof(data));
        long count = NpyFile.ElementCount(shape, out string? problem);
        if (problem != null)
            throw new ArgumentException($"shape {NpyFile.FormatShape(shape)}: {problem}", nameof(shape));
        if (count != data.LongLength)
            throw new ArgumentException(
                $"shape {NpyFile.FormatShape(shape)} holds {count} elements but data has {data.LongLength}", nameof(data));
        DType = dtype;
        _shape = (long[])shape.Clone();
        Shape = Array.AsReadOnly(_shape);
        Data = data;
    }

    /// <summary>The element type.</summary>
    public NpyDType DType { get; }

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The elements in C order: a <c>float[]</c>, <c>double[]</c>, <c>sbyte[]</c> or <c>int[]</c>.</summary>
    public Array Data { get; }

    /// <summary>The number of elements (the product of <see cref="Shape"/>).</summary>
    public long Length => Data.LongLength;

    /// <summary>
    /// The elements as <c>float</c>: float32 data is returned as is (the same array), float64 is converted.
    /// </summary>
    /// <param name="name">What the array is, for the error message.</param>
    /// <exception cref="NpyFormatException">The dtype is not a floating-point type.</exception>
    public float[] ToFloat32(string name)
    {
        switch (Data)
        {
            case float[] f:
                return f;
            case double[] d:
                var result = new float[d.Length];
                for (int i = 0; i < d.Length; i++) result[i] = (float)d[i];
                return result;
            default:
                throw new NpyFormatException($"{name}: expected float32 or float64, got {NpyFile.DTypeName(DType)}");
        }
    }

    /// <summary>
    /// The elements as <c>int</c>: int32 data is returned as is (the same array), int8 is widened.
    /// </summary>
    /// <param name="name">What the array is, for the error message.</param>
    /// <exception cref="NpyFormatException">The dtype is not an integer type.</exception>
    public int[] ToInt32(string name)
    {
        switch (Data)
        {
            case int[] i32:
                return i32;
            case sbyte[] i8:
                var result = new int[i8.Length];
                for (int i = 0; i < i8.Length; i++) result[i] = i8[i];
                return result;
            default:
                throw new NpyFormatException($"{name}: expected int32 or int8, got {NpyFile.DTypeName(DType)}");
        }
    }

    /// <summary>A short description such as <c>float32 (3, 5)</c>.</summary>
    public override string ToString() => $"{NpyFile.DTypeName(DType)} {NpyFile.FormatShape(_shape)}";
}

/// <summary>A <c>.npy</c> file (or stream) is missing, malformed, or holds something this reader does not support.</summary>
public sealed class NpyFormatException : Exception
{
    /// <summary>Creates the exception with a one-line message that names the file and the problem.</summary>
    public NpyFormatException(string message) : base(message) { }
}

/// <summary>
/// Reads and writes NumPy <c>.npy</c> files holding float32, float64, int8 or int32 arrays in C order.
/// Reading accepts format versions 1.0, 2.0 and 3.0 and both byte orders (big-endian data is byte-swapped);
/// writing produces version 1.0 (2.0 only if the header would not fit), native little-endian, with the
/// data aligned to 64 bytes as NumPy does.
/// </summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private const int MaxHeaderLength = 1 << 20;
    private const int Alignment = 64;
    /// <summary>Largest byte count handed to one Stream.Read/Write call (keeps MemoryMarshal.AsBytes within int).</summary>
    private const int ChunkBytes = 1 << 24;

    /// <summary>Reads the <c>.npy</c> file at <paramref name="path"/>.</summary>
    /// <exception cref="NpyFormatException">The file is missing, unreadable, malformed or unsupported.</exception>
    public static NpyArray Read(string path) =>
        InputFile.Read(path, stream => Read(stream, path), message => new NpyFormatException(message));

    /// <summary>
    /// Reads one <c>.npy</c> array from the current position of <paramref name="stream"/>, leaving the stream just
    /// after the data; <paramref name="nameForErrors"/> starts every error message.
    /// </summary>
    /// <exception cref="NpyFormatException">The content is malformed or unsupported.</exception>
    public static NpyArray Read(Stream stream, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        string name = nameForErrors;

        Span<byte> preamble = stackalloc byte[8];
        int got = stream.ReadAtLeast(preamble, preamble.Length, throwOnEndOfStream: false);
        if (got < Magic.Length || !preamble[..Magic.Length].SequenceEqual(Magic))
        {
            string hint = got >= 2 && preamble[0] == (byte)'P' && preamble[1] == (byte)'K'
                ? " (this looks like a zip archive, e.g. an .npz file)"
                : got == 0 ? " (the file is empty)" : "";
            throw new NpyFormatException(
                $"{name}: not a .npy file: bad magic, expected \\x93NUMPY but found {Escape(preamble[..got])}{hint}");
        }
        if (got < preamble.Length)
            throw new NpyFormatException($"{name}: truncated header: file ends inside the format version");
        int major = preamble[6], minor = preamble[7];
        if (major is not (1 or 2 or 3) || minor != 0)
            throw new NpyFormatException($"{name}: unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)");

        Span<byte> lengthBytes = stackalloc byte[major == 1 ? 2 : 4];
        got = stream.ReadAtLeast(lengthBytes, lengthBytes.Length, throwOnEndOfStream: false);
        if (got < lengthBytes.Length)
            throw new NpyFormatException($"{name}: truncated header: file ends inside the header length field");
        long headerLength = major == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(lengthBytes)
            : BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderLength)
            throw new NpyFormatException(
                $"{name}: header length {headerLength} exceeds the {MaxHeaderLength}-byte limit; the file is probably corrupt");

        var headerBytes = new byte[headerLength];
        got = stream.ReadAtLeast(headerBytes, headerBytes.Length, throwOnEndOfStream: false);
        if (got < headerBytes.Length)
            throw new NpyFormatException($"{name}: truncated header: expected {headerLength} header bytes, found {got}");
        string header;
        try
        {
            header = major == 3
                ? new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(headerBytes)
                : Encoding.Latin1.GetString(headerBytes);
        }
        catch (DecoderFallbackException)
        {
            throw new NpyFormatException($"{name}: header of a version 3.0 file is not valid UTF-8");
        }

        var (dtype, swap, shape) = ParseHeader(header, name);
        long count = ElementCount(shape, out string? problem);
        if (problem != null)
            throw new NpyFormatException($"{name}: shape {FormatShape(shape)}: {problem}");

        Array data = dtype switch
        {
            NpyDType.Float32 => ReadPayload<float>(stream, count, shape, dtype, name),
            NpyDType.Float64 => ReadPayload<double>(stream, count, shape, dtype, name),
            NpyDType.Int8 => ReadPayload<sbyte>(stream, count, shape, dtype, name),
            _ => ReadPayload<int>(stream, count, shape, dtype, name),
        };
        if (swap)
        {
            switch (data)
            {
                case float[] f: SwapInPlace(MemoryMarshal.Cast<float, int>(f.AsSpan())); break;
                case int[] i: SwapInPlace(i.AsSpan()); break;
                case double[] d:
                    Span<long> longs = MemoryMarshal.Cast<double, long>(d.AsSpan());
                    BinaryPrimitives.ReverseEndianness(longs, longs);
                    break;
            }
        }
        return new NpyArray(dtype, shape, data);
    }

    /// <summary>
    /// Writes <paramref name="array"/> to <paramref name="path"/> atomically: the bytes go to
    /// <c>path + ".tmp"</c>, which then replaces <paramref name="path"/>; on failure the temporary file is deleted
    /// and <paramref name="path"/> is left as it was.
    /// </summary>
    public static void Write(string path, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(array);
        string temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Write(stream, array);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { /* keep the original error */ }
            throw;
        }
    }

    /// <summary>Writes <paramref name="array"/> in <c>.npy</c> format at the current position of <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        char order = BitConverter.IsLittleEndian ? '<' : '>';
        string descr = array.DType switch
        {
            NpyDType.Float32 => $"{order}f4",
            NpyDType.Float64 => $"{order}f8",
            NpyDType.Int8 => "|i1",
            _ => $"{order}i4",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {FormatShape(array.Shape)}, }}";

        // Version 1.0 has a 2-byte header length; fall back to 2.0 (4 bytes) only if the header cannot fit.
        int major = 1;
        int prefix = Magic.Length + 2 + 2;
        int unpadded = prefix + dict.Length + 1;
        int total = (unpadded + Alignment - 1) / Alignment * Alignment;
        if (total - prefix > ushort.MaxValue)
        {
            major = 2;
            prefix += 2;
            unpadded += 2;
            total = (unpadded + Alignment - 1) / Alignment * Alignment;
        }
        var head = new byte[total];
        Magic.CopyTo(head, 0);
        head[6] = (byte)major;
        head[7] = 0;
        int headerLength = total - prefix;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(8), (ushort)headerLength);
        else BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(8), (uint)headerLength);
        int written = Encoding.Latin1.GetBytes(dict, head.AsSpan(prefix));
        head.AsSpan(prefix + written, total - 1 - prefix - written).Fill((byte)' ');
        head[total - 1] = (byte)'\n';
        stream.Write(head);

        switch (array.Data)
        {
            case float[] f: WritePayload(stream, f); break;
            case double[] d: WritePayload(stream, d); break;
            case sbyte[] b: WritePayload(stream, b); break;
            case int[] i: WritePayload(stream, i); break;
        }
    }

    // ---- payload -------------------------------------------------------------------------------------------

    private static T[] ReadPayload<T>(Stream stream, long count, long[] shape, NpyDType dtype, string name)
        where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (count > Array.MaxLength || count > long.MaxValue / size)
            throw new NpyFormatException(
                $"{name}: shape {FormatShape(shape)} has {count} elements, more than one .NET array can hold");
        var data = new T[count];
        int chunk = ChunkBytes / size;
        long bytesRead = 0;
        for (int offset = 0; offset < data.Length; offset += chunk)
        {
            Span<byte> bytes = MemoryMarshal.AsBytes(data.AsSpan(offset, Math.Min(chunk, data.Length - offset)));
            int got = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            bytesRead += got;
            if (got < bytes.Length)
                throw new NpyFormatException(
                    $"{name}: truncated data: shape {FormatShape(shape)} of {DTypeName(dtype)} needs {count * size} bytes " +
                    $"but only {bytesRead} follow the header");
        }
        return data;
    }

    private static void WritePayload<T>(Stream stream, T[] data) where T : unmanaged
    {
        int chunk = ChunkBytes / Unsafe.SizeOf<T>();
        for (int offset = 0; offset < data.Length; offset += chunk)
            stream.Write(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(data, offset, Math.Min(chunk, data.Length - offset))));
    }

    private static void SwapInPlace(Span<int> values) => BinaryPrimitives.ReverseEndianness(values, values);

    // ---- header --------------------------------------------------------------------------------------------

    private static (NpyDType DType, bool Swap, long[] Shape) ParseHeader(string header, string name)
    {
        object? parsed = new HeaderParser(header, name).ParseDocument();
        if (parsed is not Dictionary<string, object?> dict)
            throw new NpyFormatException($"{name}: header is not a dict: {Snippet(header)}");

        if (!dict.TryGetValue("descr", out object? descrValue))
            throw new NpyFormatException($"{name}: header has no 'descr' key: {Snippet(header)}");
        if (!dict.TryGetValue("fortran_order", out object? fortranValue))
            throw new NpyFormatException($"{name}: header has no 'fortran_order' key: {Snippet(header)}");
        if (!dict.TryGetValue("shape", out object? shapeValue))
            throw new NpyFormatException($"{name}: header has no 'shape' key: {Snippet(header)}");

        if (descrValue is not string descr)
            throw new NpyFormatException(
                $"{name}: unsupported dtype {Snippet(Describe(descrValue))}: structured dtypes are not supported; {Supported}");
        var (dtype, swap) = ParseDescr(descr, name);

        if (fortranValue is not bool fortran)
            throw new NpyFormatException($"{name}: 'fortran_order' is {Describe(fortranValue)}, expected True or False");
        if (fortran)
            throw new NpyFormatException($"{name}: fortran_order is True; C order only (save with np.ascontiguousarray)");

        if (shapeValue is not PyTuple tuple)
            throw new NpyFormatException($"{name}: 'shape' is {Describe(shapeValue)}, expected a tuple of integers");
        var shape = new long[tuple.Items.Count];
        for (int i = 0; i < shape.Length; i++)
        {
            if (tuple.Items[i] is not long dim || dim < 0)
                throw new NpyFormatException(
                    $"{name}: 'shape' entry {i} is {Describe(tuple.Items[i])}, expected a non-negative integer");
            shape[i] = dim;
        }
        return (dtype, swap, shape);
    }

    private const string Supported = "supported: float32 '<f4', float64 '<f8', int8 '|i1', int32 '<i4' (either byte order)";

    private static (NpyDType DType, bool Swap) ParseDescr(string descr, string name)
    {
        bool hasOrder = descr.Length > 0 && descr[0] is '<' or '>' or '=' or '|';
        char order = hasOrder ? descr[0] : '=';
        string code = hasOrder ? descr[1..] : descr;
        NpyDType? dtype = code switch
        {
            "f4" => NpyDType.Float32,
            "f8" => NpyDType.Float64,
            "i1" => NpyDType.Int8,
            "i4" => NpyDType.Int32,
            _ => null,
        };
        if (dtype is null)
            throw new NpyFormatException($"{name}: unsupported dtype '{InputFile.OneLine(descr)}'; {Supported}");
        bool little = order switch
        {
            '<' => true,
            '>' => false,
            _ => BitConverter.IsLittleEndian, // '=' native, '|' not applicable
        };
        return (dtype.Value, dtype != NpyDType.Int8 && little != BitConverter.IsLittleEndian);
    }

    /// <summary>A Python tuple literal (distinguished from a list so that <c>'shape'</c> can be checked).</summary>
    private sealed record PyTuple(List<object?> Items);

    /// <summary>
    /// Parses the Python literal subset NumPy writes in headers: dicts, tuples, lists, strings (single or double
    /// quotes), integers (optionally with a Python 2 <c>L</c> suffix), True, False and None.
    /// </summary>
    private sealed class HeaderParser(string text, string name)
    {
        private int _pos;

        public object? ParseDocument()
        {
            SkipSpace();
            object? value = ParseValue(depth: 0);
            SkipSpace();
            if (_pos < text.Length)
                Fail("unexpected text after the dict");
            return value;
        }

        private object? ParseValue(int depth)
        {
            if (depth > 32) Fail("nesting too deep");
            if (_pos >= text.Length) Fail("header ends where a value was expected");
            char c = text[_pos];
            switch (c)
            {
                case '{': return ParseDict(depth);
                case '(': return ParseSequence('(', ')', depth);
                case '[': return ParseSequence('[', ']', depth);
                case '\'' or '"': return ParseString();
            }
            if (c is '-' or '+' || char.IsAsciiDigit(c)) return ParseInteger();
            if ((c is 'u' or 'U' or 'b' or 'B') && _pos + 1 < text.Length && text[_pos + 1] is '\'' or '"')
            {
                _pos++;
                return ParseString();
            }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = _pos;
                while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] == '_')) _pos++;
                string word = text[start.._pos];
                switch (word)
                {
                    case "True": return true;
                    case "False": return false;
                    case "None": return null;
                }
                _pos = start;
                Fail($"unknown name '{word}'");
            }
            Fail($"unexpected character '{c}'");
            return null;
        }

        private Dictionary<string, object?> ParseDict(int depth)
        {
            var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
            _pos++; // '{'
            while (true)
            {
                SkipSpace();
                if (Peek() == '}') { _pos++; return dict; }
                object? key = ParseValue(depth + 1);
                if (key is not string k) { Fail("dict key is not a string"); return dict; }
                SkipSpace();
                Expect(':');
                SkipSpace();
                object? value = ParseValue(depth + 1);
                if (!dict.TryAdd(k, value)) Fail($"duplicate key '{k}'");
                SkipSpace();
                char next = Peek();
                if (next == ',') _pos++;
                else if (next != '}') Fail("expected ',' or '}' after a dict entry");
            }
        }

        private object? ParseSequence(char open, char close, int depth)
        {
            var items = new List<object?>();
            bool sawComma = false;
            _pos++; // open
            while (true)
            {
                SkipSpace();
                if (Peek() == close) { _pos++; break; }
                items.Add(ParseValue(depth + 1));
                SkipSpace();
                char next = Peek();
                if (next == ',') { _pos++; sawComma = true; }
                else if (next != close) Fail($"expected ',' or '{close}' in a {(open == '(' ? "tuple" : "list")}");
            }
            if (open == '[') return items;
            // "(x)" without a comma is a parenthesised value in Python, not a tuple.
            if (items.Count == 1 && !sawComma) return items[0];
            return new PyTuple(items);
        }

        private string ParseString()
        {
            char quote = text[_pos++];
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= text.Length) Fail("unterminated string");
                char c = text[_pos++];
                if (c == quote) return sb.ToString();
                if (c == '\n') Fail("unterminated string");
                if (c == '\\' && _pos < text.Length)
                {
                    char e = text[_pos++];
                    sb.Append(e switch { 'n' => '\n', 't' => '\t', 'r' => '\r', '0' => '\0', _ => e });
                }
                else
                {
                    sb.Append(c);
                }
            }
        }

        private long ParseInteger()
        {
            int start = _pos;
            if (text[_pos] is '-' or '+') _pos++;
            int digits = _pos;
            while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
            if (_pos == digits) { _pos = start; Fail("expected digits"); }
            string number = text[start.._pos];
            if (_pos < text.Length && text[_pos] is 'L' or 'l') _pos++;
            if (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] == '.'))
            {
                _pos = start;
                Fail("expected an integer");
            }
            if (!long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
            {
                _pos = start;
                Fail($"integer {number} is out of range");
            }
            return value;
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void Expect(char c)
        {
            if (Peek() != c) Fail($"expected '{c}'");
            _pos++;
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && text[_pos] is ' ' or '\t' or '\n' or '\r' or '\f' or '\v') _pos++;
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private void Fail(string what) =>
            throw new NpyFormatException(
                $"{name}: cannot parse header dict at offset {_pos}: {what}: {Snippet(text)}");
    }

    // ---- helpers shared with NpyArray ---------------------------------------------------------------------

    internal static Type? ElementType(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => typeof(float),
        NpyDType.Float64 => typeof(double),
        NpyDType.Int8 => typeof(sbyte),
        NpyDType.Int32 => typeof(int),
        _ => null,
    };

    internal static string DTypeName(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => "float32",
        NpyDType.Float64 => "float64",
        NpyDType.Int8 => "int8",
        NpyDType.Int32 => "int32",
        _ => $"dtype {(int)dtype}",
    };

    /// <summary>Product of <paramref name="shape"/>; <paramref name="problem"/> says why it is invalid, if it is.</summary>
    internal static long ElementCount(IReadOnlyList<long> shape, out string? problem)
    {
        long count = 1;
        problem = null;
        foreach (long dim in shape)
        {
            if (dim < 0) { problem = "dimensions must not be negative"; return 0; }
        }
        foreach (long dim in shape)
        {
            if (dim == 0) return 0;
            if (count > long.MaxValue / dim) { problem = "element count overflows a 64-bit integer"; return 0; }
            count *= dim;
        }
        return count;
    }

    /// <summary>Python tuple notation: <c>()</c>, <c>(5,)</c>, <c>(3, 4)</c>.</summary>
    internal static string FormatShape(IReadOnlyList<long> shape) => shape.Count switch
    {
        0 => "()",
        1 => $"({shape[0].ToString(CultureInfo.InvariantCulture)},)",
        _ => "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
    };

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        PyTuple t => "(" + string.Join(", ", t.Items.Select(Describe)) + (t.Items.Count == 1 ? ",)" : ")"),
        List<object?> list => "[" + string.Join(", ", list.Select(Describe)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(kv => $"'{kv.Key}': {Describe(kv.Value)}")) + "}",
        _ => value.ToString() ?? "?",
    };

    /// <summary>The header text on one line, trimmed and cut to a readable length.</summary>
    private static string Snippet(string text)
    {
        string line = InputFile.OneLine(text.TrimEnd());
        return line.Length <= 200 ? line : line[..200] + "...";
    }

    private static string Escape(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return "nothing";
        var sb = new StringBuilder("'");
        foreach (byte b in bytes)
        {
            if (b >= 0x20 && b < 0x7f && b != '\\' && b != '\'') sb.Append((char)b);
            else sb.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
        }
        return sb.Append('\'').ToString();
    }
}
