using OmniKernels.IO;
using OmniKernels.Weights;
using SharpFuzz;

namespace OmniKernels.Fuzz;

/// <summary>
/// afl++ targets for the readers that take files from outside: <c>safetensors</c> (the weights loader,
/// through its memory-mapped <see cref="SafetensorsFile.Open"/>), <c>npy</c> and <c>wav</c>. A reader may
/// reject an input only with its own format exception; anything else (another exception, a crash, a hang,
/// an allocation that runs out of memory) is a finding. Built, instrumented and run by <c>fuzz.sh</c>
/// (docs/fuzzing.md); <c>--replay FILE...</c> runs inputs once without afl (how crashes are checked).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length < 1 || Target(args[0]) is not { } target)
        {
            Console.Error.WriteLine("usage: OmniKernels.Fuzz safetensors|npy|wav [--replay FILE...]");
            return 2;
        }
        if (args.Length > 1 && args[1] == "--replay")
        {
            foreach (var file in args.Skip(2))
            {
                using var s = File.OpenRead(file);
                target(s);
                Console.WriteLine($"{file}: handled");
            }
            return 0;
        }
        Fuzzer.OutOfProcess.Run(target);
        return 0;
    }

    private static Action<Stream>? Target(string name) => name switch
    {
        "safetensors" => Safetensors,
        "npy" => stream =>
        {
            try { NpyFile.Read(Seekable(stream), "fuzz.npy"); }
            catch (NpyFormatException) { }
        },
        "wav" => stream =>
        {
            try { WavFile.Read(Seekable(stream), "fuzz.wav"); }
            catch (WavFormatException) { }
        },
        _ => null,
    };

    // The readers see files in production: give them a seekable stream as a FileStream would be.
    private static MemoryStream Seekable(Stream input)
    {
        var copy = new MemoryStream();
        input.CopyTo(copy);
        copy.Position = 0;
        return copy;
    }

    private static readonly string Scratch = Path.Combine(Path.GetTempPath(), $"omni-fuzz-{Environment.ProcessId}.safetensors");

    private static void Safetensors(Stream input)
    {
        using (var file = File.Create(Scratch)) input.CopyTo(file);
        try
        {
            using var st = SafetensorsFile.Open(Scratch);
            foreach (var t in st.Tensors)
            {
                var bytes = st.GetBytes(t.Name);
                if (bytes.Length != t.ByteLength) throw new InvalidOperationException($"span of {bytes.Length} bytes for {t.ByteLength}");
                if (t.DType.IsFloat() && t.ElementCount <= 1 << 16)
                    st.ReadAsFloat32(t.Name, new float[t.ElementCount]);
            }
        }
        catch (SafetensorsFormatException) { }
    }
}
