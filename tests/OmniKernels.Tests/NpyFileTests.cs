using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using NUnit.Framework;
using OmniKernels.IO;

namespace OmniKernels.Tests;

[TestFixture]
public class NpyFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "npytest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    // ---- helpers ------------------------------------------------------------------------------------------

    private static long Product(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    private static NpyArray RandomArray(NpyDType dtype, long[] shape, int seed)
    {
        var rng = new Random(seed);
        int n = checked((int)Product(shape));
        Array data = dtype switch
        {
            NpyDType.Float32 => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 200 - 100) + 0.5f).ToArray(),
            NpyDType.Float64 => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2e6 - 1e6 + 0.25).ToArray(),
            NpyDType.Int8 => Enumerable.Range(0, n).Select(i => (sbyte)(i == 0 ? -128 : rng.Next(-128, 128))).ToArray(),
            _ => Enumerable.Range(0, n).Select(i => i == 0 ? int.MinValue : rng.Next(int.MinValue, int.MaxValue)).ToArray(),
        };
        return new NpyArray(dtype, shape, data);
    }

    private static byte[] RawBytes(Array data) => data switch
    {
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()).ToArray(),
        double[] d => MemoryMarshal.AsBytes(d.AsSpan()).ToArray(),
        sbyte[] b => MemoryMarshal.AsBytes(b.AsSpan()).ToArray(),
        int[] i => MemoryMarshal.AsBytes(i.AsSpan()).ToArray(),
        _ => throw new ArgumentException("unexpected data type"),
    };

    private static string NumpyName(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => "float32",
        NpyDType.Float64 => "float64",
        NpyDType.Int8 => "int8",
        _ => "int32",
    };

    private static string PyShape(long[] shape) =>
        shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";

    private static void AssertSame(NpyArray actual, NpyArray expected)
    {
        Assert.That(actual.DType, Is.EqualTo(expected.DType));
        Assert.That(actual.Shape, Is.EqualTo(expected.Shape));
        Assert.That(actual.Length, Is.EqualTo(expected.Length));
        Assert.That(actual.Data.GetType(), Is.EqualTo(expected.Data.GetType()));
        Assert.That(actual.Data, Is.EqualTo(expected.Data));
    }

    /// <summary>A .npy file with the given header dict text (padded like NumPy's) and payload.</summary>
    private static byte[] HandMade(string dict, byte[] payload, int major = 1)
    {
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - prefix - 1) + "\n";
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)header.Length));
        else ms.Write(BitConverter.GetBytes((uint)header.Length));
        ms.Write(Encoding.ASCII.GetBytes(header));
        ms.Write(payload);
        return ms.ToArray();
    }

    private static NpyFormatException ReadFails(byte[] bytes, string name = "bad.npy") =>
        Assert.Throws<NpyFormatException>(() => NpyFile.Read(new MemoryStream(bytes), name))!;

    private static readonly long[][] Shapes = [[], [7], [3, 5], [2, 3, 4]];
    private static readonly NpyDType[] DTypes = [NpyDType.Float32, NpyDType.Float64, NpyDType.Int8, NpyDType.Int32];

    private static IEnumerable<TestCaseData> RoundTripCases()
    {
        int seed = 1;
        foreach (NpyDType dtype in DTypes)
            foreach (long[] shape in Shapes)
                yield return new TestCaseData(dtype, shape, seed++).SetArgDisplayNames(dtype.ToString(), PyShape(shape));
    }

    // ---- round trips --------------------------------------------------------------------------------------

    [TestCaseSource(nameof(RoundTripCases))]
    public void RoundTrip_MemoryStream(NpyDType dtype, long[] shape, int seed)
    {
        NpyArray original = RandomArray(dtype, shape, seed);
        var ms = new MemoryStream();
        NpyFile.Write(ms, original);

        byte[] bytes = ms.ToArray();
        Assert.That(bytes[6], Is.EqualTo(1), "major version");
        Assert.That(bytes[7], Is.EqualTo(0), "minor version");
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        int dataOffset = 10 + headerLength;
        Assert.That(dataOffset % 64, Is.EqualTo(0), "data must start at a multiple of 64");
        Assert.That(bytes[dataOffset - 1], Is.EqualTo((byte)'\n'), "header must end with a newline");
        Assert.That(bytes.Length - dataOffset, Is.EqualTo(RawBytes(original.Data).Length));

        ms.Position = 0;
        NpyArray read = NpyFile.Read(ms, "memory");
        AssertSame(read, original);
        Assert.That(ms.Position, Is.EqualTo(ms.Length), "reader stops at the end of the data");
    }

    [TestCaseSource(nameof(RoundTripCases))]
    public void RoundTrip_TempFile(NpyDType dtype, long[] shape, int seed)
    {
        NpyArray original = RandomArray(dtype, shape, seed + 100);
        string path = Path.Combine(_dir, "a.npy");
        NpyFile.Write(path, original);
        Assert.That(File.Exists(path + ".tmp"), Is.False, "temporary file must be gone");
        AssertSame(NpyFile.Read(path), original);
    }

    [Test]
    public void Write_OverwritesExistingFile()
    {
        string path = Path.Combine(_dir, "over.npy");
        NpyFile.Write(path, RandomArray(NpyDType.Float64, [50, 50], 5));
        NpyArray second = RandomArray(NpyDType.Int8, [3], 6);
        NpyFile.Write(path, second);
        AssertSame(NpyFile.Read(path), second);
        Assert.That(Directory.GetFiles(_dir), Is.EquivalentTo(new[] { path }));
    }

    [Test]
    public void Write_ToMissingDirectory_ThrowsAndLeavesNothing()
    {
        string missingDir = Path.Combine(_dir, "does-not-exist");
        string path = Path.Combine(missingDir, "x.npy");
        Assert.That(() => NpyFile.Write(path, RandomArray(NpyDType.Float32, [4], 7)), Throws.InstanceOf<IOException>());
        Assert.That(Directory.Exists(missingDir), Is.False);
        Assert.That(File.Exists(path), Is.False);
        Assert.That(File.Exists(path + ".tmp"), Is.False);
        Assert.That(Directory.GetFileSystemEntries(_dir), Is.Empty);
    }

    // ---- files written by NumPy ---------------------------------------------------------------------------

    private NpyArray SaveWithNumpy(NpyArray source, string saveExpression, string fileName)
    {
        string raw = Path.Combine(_dir, fileName + ".bin");
        string npy = Path.Combine(_dir, fileName);
        File.WriteAllBytes(raw, RawBytes(source.Data));
        NumPy.Run(
            $"a = np.fromfile(sys.argv[1], dtype=np.{NumpyName(source.DType)}).reshape({PyShape(source.Shape.ToArray())})\n" +
            $"p = sys.argv[2]\n{saveExpression}\n",
            raw, npy);
        return NpyFile.Read(npy);
    }

    [Test]
    public void ReadNumpy_Float32_2D()
    {
        NpyArray source = RandomArray(NpyDType.Float32, [300, 517], 11);
        AssertSame(SaveWithNumpy(source, "np.save(p, a)", "f32.npy"), source);
    }

    [Test]
    public void ReadNumpy_Float64()
    {
        NpyArray source = RandomArray(NpyDType.Float64, [13, 7], 12);
        AssertSame(SaveWithNumpy(source, "np.save(p, a)", "f64.npy"), source);
    }

    [Test]
    public void ReadNumpy_Int8()
    {
        NpyArray source = RandomArray(NpyDType.Int8, [1000], 13);
        AssertSame(SaveWithNumpy(source, "np.save(p, a)", "i8.npy"), source);
    }

    [Test]
    public void ReadNumpy_Int32()
    {
        NpyArray source = RandomArray(NpyDType.Int32, [4, 5, 6], 14);
        AssertSame(SaveWithNumpy(source, "np.save(p, a)", "i32.npy"), source);
    }

    [Test]
    public void ReadNumpy_Scalar()
    {
        NpyArray source = RandomArray(NpyDType.Float64, [], 15);
        AssertSame(SaveWithNumpy(source, "np.save(p, a)", "scalar.npy"), source);
    }

    [Test]
    public void ReadNumpy_Version2Header()
    {
        NpyArray source = RandomArray(NpyDType.Float32, [17, 3], 16);
        NpyArray read = SaveWithNumpy(source,
            "with open(p, 'wb') as f:\n    np.lib.format.write_array(f, a, version=(2, 0))", "v2.npy");
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "v2.npy"))[6], Is.EqualTo(2), "file should be version 2.0");
        AssertSame(read, source);
    }

    [Test]
    public void ReadNumpy_Version3Header()
    {
        NpyArray source = RandomArray(NpyDType.Int32, [9], 17);
        NpyArray read = SaveWithNumpy(source,
            "with open(p, 'wb') as f:\n    np.lib.format.write_array(f, a, version=(3, 0))", "v3.npy");
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "v3.npy"))[6], Is.EqualTo(3), "file should be version 3.0");
        AssertSame(read, source);
    }

    [Test]
    public void ReadNumpy_BigEndianIsByteSwapped()
    {
        NpyArray f32 = RandomArray(NpyDType.Float32, [6, 4], 18);
        AssertSame(SaveWithNumpy(f32, "np.save(p, a.astype('>f4'))", "be32.npy"), f32);
        NpyArray f64 = RandomArray(NpyDType.Float64, [5], 19);
        AssertSame(SaveWithNumpy(f64, "np.save(p, a.astype('>f8'))", "be64.npy"), f64);
        NpyArray i32 = RandomArray(NpyDType.Int32, [2, 2], 20);
        AssertSame(SaveWithNumpy(i32, "np.save(p, a.astype('>i4'))", "bei32.npy"), i32);
    }

    [Test]
    public void ReadNumpy_FortranOrder_IsRejected()
    {
        NpyArray source = RandomArray(NpyDType.Float32, [3, 4], 21);
        var ex = Assert.Throws<NpyFormatException>(() =>
            SaveWithNumpy(source, "np.save(p, np.asfortranarray(a))", "fortran.npy"));
        Assert.That(ex!.Message, Does.Contain("C order only"));
        Assert.That(ex.Message, Does.Contain("fortran.npy"));
    }

    [Test]
    public void NumpyReadsOurFiles()
    {
        int seed = 30;
        foreach (NpyDType dtype in DTypes)
        {
            foreach (long[] shape in Shapes)
            {
                NpyArray array = RandomArray(dtype, shape, seed++);
                string npy = Path.Combine(_dir, $"ours-{dtype}-{shape.Length}.npy");
                string raw = npy + ".bin";
                NpyFile.Write(npy, array);
                File.WriteAllBytes(raw, RawBytes(array.Data));
                string result = NumPy.Run(
                    "a = np.load(sys.argv[1])\n" +
                    $"e = np.fromfile(sys.argv[2], dtype=np.{NumpyName(dtype)}).reshape({PyShape(shape)})\n" +
                    "print(a.dtype == e.dtype, a.shape == e.shape, np.array_equal(a, e), a.flags.c_contiguous)",
                    npy, raw);
                Assert.That(result.Trim(), Is.EqualTo("True True True True"), $"{dtype} {PyShape(shape)}");
            }
        }
    }

    // ---- header parsing -----------------------------------------------------------------------------------

    [TestCase("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")]
    [TestCase("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}")]
    [TestCase("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}")]
    [TestCase("{'descr':'=f4','fortran_order':False,'shape':(2L, 3L)}")]
    [TestCase("{ 'fortran_order' : False ,\n 'descr' : 'f4' , 'shape' : ( 2 , 3 , ) , }")]
    public void Header_Variants_AreParsed(string dict)
    {
        float[] values = [1.5f, -2, 3, 4, 5, 6.25f];
        NpyArray read = NpyFile.Read(new MemoryStream(HandMade(dict, RawBytes(values))), "hand.npy");
        Assert.That(read.DType, Is.EqualTo(NpyDType.Float32));
        Assert.That(read.Shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(read.Data, Is.EqualTo(values));
    }

    [TestCase("|i1", NpyDType.Int8)]
    [TestCase("<i1", NpyDType.Int8)]
    [TestCase("i1", NpyDType.Int8)]
    [TestCase("<i4", NpyDType.Int32)]
    [TestCase("<f8", NpyDType.Float64)]
    public void Header_DTypes(string descr, NpyDType expected)
    {
        var source = RandomArray(expected, [5], 40);
        byte[] bytes = HandMade($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (5,), }}", RawBytes(source.Data));
        AssertSame(NpyFile.Read(new MemoryStream(bytes), "d.npy"), source);
    }

    [Test]
    public void Header_ScalarShape()
    {
        byte[] bytes = HandMade("{'descr': '<i4', 'fortran_order': False, 'shape': (), }", BitConverter.GetBytes(-42));
        NpyArray read = NpyFile.Read(new MemoryStream(bytes), "s.npy");
        Assert.That(read.Shape, Is.Empty);
        Assert.That(read.Data, Is.EqualTo(new[] { -42 }));
    }

    // ---- bad inputs ---------------------------------------------------------------------------------------

    [Test]
    public void Read_MissingFile()
    {
        string path = Path.Combine(_dir, "nope.npy");
        var ex = Assert.Throws<NpyFormatException>(() => NpyFile.Read(path));
        Assert.That(ex!.Message, Is.EqualTo($"{path}: file not found"));
    }

    [Test]
    public void Read_BadMagic()
    {
        string path = Path.Combine(_dir, "text.npy");
        File.WriteAllText(path, "hello, this is not numpy data");
        var ex = Assert.Throws<NpyFormatException>(() => NpyFile.Read(path));
        Assert.That(ex!.Message, Does.Contain("magic"));
        Assert.That(ex.Message, Does.StartWith(path));
    }

    [Test]
    public void Read_EmptyStream()
    {
        var ex = ReadFails([]);
        Assert.That(ex.Message, Does.Contain("magic").And.Contain("empty"));
    }

    [Test]
    public void Read_TruncatedData()
    {
        var ms = new MemoryStream();
        NpyFile.Write(ms, RandomArray(NpyDType.Float32, [3, 5], 50));
        byte[] bytes = ms.ToArray()[..^7];
        var ex = ReadFails(bytes, "short.npy");
        Assert.That(ex.Message, Does.StartWith("short.npy:"));
        Assert.That(ex.Message, Does.Contain("truncated data"));
        Assert.That(ex.Message, Does.Contain("(3, 5)"));
    }

    [Test]
    public void Read_TruncatedDataFile()
    {
        string path = Path.Combine(_dir, "cut.npy");
        NpyFile.Write(path, RandomArray(NpyDType.Int32, [100], 51));
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^1]);
        var ex = Assert.Throws<NpyFormatException>(() => NpyFile.Read(path));
        Assert.That(ex!.Message, Does.StartWith(path).And.Contain("truncated"));
    }

    [Test]
    public void Read_TruncatedHeader()
    {
        var ms = new MemoryStream();
        NpyFile.Write(ms, RandomArray(NpyDType.Float32, [3], 52));
        var ex = ReadFails(ms.ToArray()[..40]);
        Assert.That(ex.Message, Does.Contain("truncated header"));
    }

    [Test]
    public void Read_FortranOrder()
    {
        byte[] bytes = HandMade("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new byte[16]);
        var ex = ReadFails(bytes, "f.npy");
        Assert.That(ex.Message, Does.Contain("C order only").And.Contain("fortran_order"));
    }

    [TestCase("<f2")]
    [TestCase("|b1")]
    [TestCase("<i8")]
    [TestCase("<c8")]
    public void Read_UnsupportedDType(string descr)
    {
        byte[] bytes = HandMade($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (4,), }}", new byte[64]);
        var ex = ReadFails(bytes, "u.npy");
        Assert.That(ex.Message, Does.Contain($"unsupported dtype '{descr}'"));
        Assert.That(ex.Message, Does.StartWith("u.npy:"));
    }

    [Test]
    public void Read_UnsupportedDType_FromNumpy()
    {
        string path = Path.Combine(_dir, "half.npy");
        NumPy.Run("np.save(sys.argv[1], np.arange(6, dtype=np.float16))", path);
        var ex = Assert.Throws<NpyFormatException>(() => NpyFile.Read(path));
        Assert.That(ex!.Message, Does.Contain("unsupported dtype '<f2'"));
    }

    [Test]
    public void Read_StructuredDType()
    {
        byte[] bytes = HandMade("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", new byte[8]);
        Assert.That(ReadFails(bytes).Message, Does.Contain("unsupported dtype").And.Contain("structured"));
    }

    [TestCase("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", "cannot parse")]
    [TestCase("{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", "cannot parse")]
    [TestCase("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}", "cannot parse")]
    [TestCase("{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", "cannot parse")]
    [TestCase("{'descr': '<f4', 'fortran_order': False}", "'shape'")]
    [TestCase("{'descr': '<f4', 'fortran_order': False, 'shape': 6}", "tuple")]
    [TestCase("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", "non-negative")]
    [TestCase("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "out of range")]
    [TestCase("['descr', '<f4']", "not a dict")]
    public void Read_BadHeader(string dict, string expected)
    {
        var ex = ReadFails(HandMade(dict, new byte[24]), "h.npy");
        Assert.That(ex.Message, Does.StartWith("h.npy:").And.Contain(expected));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void Read_UnsupportedVersion()
    {
        byte[] bytes = HandMade("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new byte[4]);
        bytes[6] = 4;
        Assert.That(ReadFails(bytes).Message, Does.Contain("version 4.0"));
    }

    // ---- NpyArray -----------------------------------------------------------------------------------------

    [Test]
    public void Constructor_Validates()
    {
        Assert.That(() => new NpyArray(NpyDType.Float32, [2, 2], new float[3]), Throws.InstanceOf<ArgumentException>());
        Assert.That(() => new NpyArray(NpyDType.Float32, [4], new double[4]), Throws.InstanceOf<ArgumentException>());
        Assert.That(() => new NpyArray(NpyDType.Int8, [4], new byte[4]), Throws.InstanceOf<ArgumentException>());
        Assert.That(() => new NpyArray(NpyDType.Int32, [-1], new int[1]), Throws.InstanceOf<ArgumentException>());
        Assert.That(() => new NpyArray(NpyDType.Int32, [], new int[2]), Throws.InstanceOf<ArgumentException>());
        Assert.That(new NpyArray(NpyDType.Int32, [], new int[1]).Length, Is.EqualTo(1));
        Assert.That(new NpyArray(NpyDType.Int32, [3, 0], new int[0]).Length, Is.EqualTo(0));
    }

    [Test]
    public void Constructor_CopiesShape()
    {
        long[] shape = [2, 3];
        var array = new NpyArray(NpyDType.Float32, shape, new float[6]);
        shape[0] = 99;
        Assert.That(array.Shape, Is.EqualTo(new long[] { 2, 3 }));
    }

    [Test]
    public void ToFloat32_And_ToInt32()
    {
        NpyArray f32 = RandomArray(NpyDType.Float32, [10], 60);
        Assert.That(f32.ToFloat32("w"), Is.SameAs(f32.Data));

        NpyArray f64 = RandomArray(NpyDType.Float64, [10], 61);
        Assert.That(f64.ToFloat32("w"), Is.EqualTo(((double[])f64.Data).Select(d => (float)d).ToArray()));

        NpyArray i32 = RandomArray(NpyDType.Int32, [10], 62);
        Assert.That(i32.ToInt32("ids"), Is.SameAs(i32.Data));

        NpyArray i8 = RandomArray(NpyDType.Int8, [10], 63);
        Assert.That(i8.ToInt32("ids"), Is.EqualTo(((sbyte[])i8.Data).Select(b => (int)b).ToArray()));

        var ex = Assert.Throws<NpyFormatException>(() => i8.ToFloat32("weights.npy"));
        Assert.That(ex!.Message, Is.EqualTo("weights.npy: expected float32 or float64, got int8"));
        ex = Assert.Throws<NpyFormatException>(() => i32.ToFloat32("weights.npy"));
        Assert.That(ex!.Message, Is.EqualTo("weights.npy: expected float32 or float64, got int32"));
        ex = Assert.Throws<NpyFormatException>(() => f64.ToInt32("ids.npy"));
        Assert.That(ex!.Message, Does.StartWith("ids.npy:").And.Contain("float64"));
        ex = Assert.Throws<NpyFormatException>(() => f32.ToInt32("ids.npy"));
        Assert.That(ex!.Message, Does.StartWith("ids.npy:").And.Contain("float32"));
    }
}
