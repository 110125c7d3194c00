using CsCheck;
using NUnit.Framework;
using OmniKernels.Weights;

namespace OmniKernels.Tests.Weights;

/// <summary>CsCheck: random tensor sets (every dtype, scalars, zero dimensions, unicode names, metadata) written and read back equal.</summary>
[TestFixture]
public sealed class SafetensorsPropertyTests
{
    private sealed record Tensor(string Name, SafetensorsDType DType, long[] Shape, byte[] Data);

    private static readonly Gen<string> Name = Gen.String[Gen.Char["abcz09._-é名"], 1, 12];

    private static readonly Gen<Tensor> OneTensor =
        from name in Name
        from dtype in Gen.Enum<SafetensorsDType>()
        from shape in Gen.Long[0, 5].Array[0, 4]
        from data in Gen.Byte.Array[(int)(shape.Aggregate(1L, (a, b) => a * b) * dtype.Size())]
        select new Tensor(name, dtype, shape, dtype == SafetensorsDType.BOOL ? data.Select(b => (byte)(b & 1)).ToArray() : data);

    private static readonly Gen<(Tensor[] Tensors, Dictionary<string, string> Metadata)> Sets =
        Gen.Select(OneTensor.Array[0, 8].Select(ts => ts.DistinctBy(t => t.Name).Where(t => t.Name != "__metadata__").ToArray()),
            Gen.Dictionary(Name, Gen.String)[0, 3]);

    [Test]
    public void RandomTensorSetsRoundTrip()
    {
        string dir = Corpus.NewTempDir("stprop");
        try
        {
            int n = 0;
            Sets.Sample(set =>
            {
                string path = Path.Combine(dir, $"p{n++}.safetensors");
                var writer = new SafetensorsWriter();
                foreach (var (k, v) in set.Metadata) writer.Metadata[k] = v;
                foreach (var t in set.Tensors) writer.Add(t.Name, t.DType, t.Shape, t.Data);
                long bytes = writer.Write(path);
                using (var file = SafetensorsFile.Open(path))
                {
                    if (file.Length != bytes || !file.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal).SequenceEqual(set.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal)))
                        return false;
                    if (!file.Tensors.Select(t => t.Name).SequenceEqual(set.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal)))
                        return false;
                    foreach (var t in set.Tensors)
                    {
                        var info = file.GetInfo(t.Name);
                        if (info.DType != t.DType || !info.Shape.SequenceEqual(t.Shape) || !file.GetBytes(t.Name).SequenceEqual(t.Data)
                            || info.DataBegin % t.DType.Size() != 0)
                            return false;
                    }
                }
                File.Delete(path);
                return true;
            }, iter: 300, seed: "0N0XIzNsQ0O2");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
