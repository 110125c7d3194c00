using System.CommandLine;
using System.Globalization;
using OmniKernels.Audio;
using OmniKernels.Images;
using OmniKernels.IO;
using OmniKernels.Kernels;
using OmniKernels.Ops;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni</c>: parses, calls the runtime, prints. Exit codes: 0 success, 1 a check failed,
/// 2 bad input (nothing written), 3 the device failed.
/// </summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the CLI with explicit writers (tests call this in-process).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var device = new Option<string?>("--device") { Description = "auto, cuda, opencl, cpu or reference (default: $OMNI_DEVICE, else auto)" };

        var devices = new Command("devices", "List accelerators, mark the one auto picks, and run each one's self-test");
        devices.SetAction(_ => Devices(stdout));

        var ins = new Option<string[]>("--in") { Description = "NAME=FILE.npy, once per input", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
        var outFile = new Option<string>("--out") { Description = "output .npy (float32)", Required = true };
        var param = new Option<string[]>("--param") { Description = "KEY=VALUE op parameter", Arity = ArgumentArity.ZeroOrMore };
        var opName = new Argument<string>("NAME") { Description = "op: " + string.Join(", ", OpCatalog.All.Select(o => o.Name)) };
        var schedule = new Option<string?>("--schedule") { Description = "auto, cpu or gpu: the kernels' tiling (default: $OMNI_SCHEDULE, else the device's own)" };
        var op = new Command("op", "Run one kernel on .npy inputs: omni op NAME --in NAME=FILE.npy ... --out FILE.npy") { opName, ins, outFile, param, device, schedule };
        op.SetAction(r => RunOp(r.GetValue(opName)!, r.GetValue(ins) ?? [], r.GetValue(outFile)!, r.GetValue(param) ?? [], r.GetValue(device), r.GetValue(schedule), stdout, stderr));

        var ops = new Command("ops", "List ops with their inputs and parameters");
        ops.SetAction(_ => ListOps(stdout));

        var size = new Option<int>("--size") { Description = "M = N = K of the checked GEMM", DefaultValueFactory = _ => 509 };
        var check = new Command("selfcheck", "Show the device, check a fused GEMM against the float64 reference and time it") { device, size };
        check.SetAction(r => RunSelfCheck(r.GetValue(device), r.GetValue(size), stdout, stderr));

        var mfcc = MfccCommand(device, stdout, stderr);
        var preprocess = PreprocessCommand(device, stdout, stderr);

        var root = new RootCommand("OmniKernels: ILGPU kernels for omni-modal inference") { devices, op, ops, check, mfcc, preprocess, RunCommand.Create(device, stdout, stderr),
            DemoCommand.Create(device, stdout, stderr), EvalCommand.Create(device, stdout, stderr) };
        foreach (var c in WeightsCommands.Create(stdout, stderr)) root.Subcommands.Add(c);
        foreach (var c in SearchCommands.Create(device, stdout, stderr)) root.Subcommands.Add(c);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"omni: {e.Message}");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    private static Command MfccCommand(Option<string?> device, TextWriter o, TextWriter err)
    {
        var defaults = new AudioFeatureOptions();
        var wav = new Option<string>("--wav") { Description = "input WAV (PCM 8-32 bit, float 32/64, any channels: mixed to mono)", Required = true };
        var output = new Option<string>("--out") { Description = "output .npy, float32 [n_mfcc, frames] (or [n_mels, frames] for --log-mel-whisper)", Required = true };
        var rate = new Option<int>("--sample-rate") { Description = "rate the features use; other WAV rates are resampled (torchaudio's sinc)", DefaultValueFactory = _ => defaults.SampleRate };
        var nFft = new Option<int>("--n-fft") { DefaultValueFactory = _ => defaults.NFft };
        var win = new Option<int?>("--win-length") { Description = "default: n_fft" };
        var hop = new Option<int?>("--hop") { Description = "default: win_length / 2" };
        var nMels = new Option<int>("--n-mels") { DefaultValueFactory = _ => defaults.NMels };
        var nMfcc = new Option<int>("--n-mfcc") { DefaultValueFactory = _ => defaults.NMfcc };
        var fMin = new Option<double>("--f-min") { DefaultValueFactory = _ => defaults.FMin };
        var fMax = new Option<double?>("--f-max") { Description = "default: sample_rate / 2" };
        var scale = new Option<string>("--mel-scale") { Description = "htk or slaney", DefaultValueFactory = _ => "htk" };
        var norm = new Option<string>("--mel-norm") { Description = "none or slaney", DefaultValueFactory = _ => "none" };
        var logMels = new Option<bool>("--log-mels") { Description = "ln(mel + 1e-6) instead of dB" };
        var topDb = new Option<double?>("--top-db") { Description = "dB floor below the clip's maximum (default 80)" };
        var whisper = new Option<bool>("--log-mel-whisper") { Description = "Whisper's log-mel (80 Slaney mels, hop 160) instead of MFCC" };
        var command = new Command("mfcc", "MFCC (torchaudio.transforms.MFCC() by default) or Whisper's log-mel of a WAV file")
        {
            wav, output, rate, nFft, win, hop, nMels, nMfcc, fMin, fMax, scale, norm, logMels, topDb, whisper, device,
        };
        command.SetAction(r =>
        {
            AudioFeatureOptions options;
            float[] samples;
            DeviceKind kind;
            string outPath = r.GetValue(output)!;
            try
            {
                kind = DeviceKinds.Resolve(r.GetValue(device));
                if (kind == DeviceKind.Reference)
                    throw new ArgumentException("mfcc has no float64 reference device; its reference is torchaudio (tools/make_audio_vectors.py)");
                bool w = r.GetValue(whisper);
                var baseOptions = w ? AudioFeatureOptions.Whisper : defaults;
                if (w && (r.GetResult(nMels) is { Implicit: false } || r.GetResult(hop) is { Implicit: false } || r.GetResult(scale) is { Implicit: false } || r.GetResult(norm) is { Implicit: false }))
                    throw new ArgumentException("--log-mel-whisper fixes Whisper's mel options; drop --n-mels, --hop, --mel-scale and --mel-norm");
                options = baseOptions with
                {
                    SampleRate = r.GetValue(rate),
                    NFft = r.GetValue(nFft),
                    WinLength = r.GetValue(win),
                    Hop = w ? baseOptions.Hop : r.GetValue(hop),
                    NMels = w ? baseOptions.NMels : r.GetValue(nMels),
                    NMfcc = r.GetValue(nMfcc),
                    FMin = r.GetValue(fMin),
                    FMax = r.GetValue(fMax) ?? baseOptions.FMax,
                    Scale = w ? baseOptions.Scale : ParseScale(r.GetValue(scale)!),
                    Norm = w ? baseOptions.Norm : ParseNorm(r.GetValue(norm)!),
                    LogMels = r.GetValue(logMels),
                    TopDb = r.GetValue(topDb) ?? baseOptions.TopDb,
                };
                options.Validate();
                if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(outPath))))
                    throw new ArgumentException($"--out {outPath}: directory does not exist");
                var audio = WavFile.Read(r.GetValue(wav)!);
                samples = audio.SampleRate == options.SampleRate ? audio.Samples : Resampler.Resample(audio.Samples, audio.SampleRate, options.SampleRate);
                if (samples.Length <= options.NFft / 2)
                    throw new ArgumentException($"{r.GetValue(wav)}: {samples.Length} samples at {options.SampleRate} Hz; at least {options.NFft / 2 + 1} are needed");
            }
            catch (Exception e) when (e is ArgumentException or WavFormatException)
            {
                err.WriteLine($"omni mfcc: {e.Message}");
                return 2;
            }
            FeatureMatrix features;
            try
            {
                using var ctx = DeviceContext.Create(kind);
                if (ctx.Kind == DeviceKind.Cpu && kind == DeviceKind.Auto) err.WriteLine(DeviceCatalog.EmulatorWarning);
                using var extractor = new AudioFeatureExtractor(ctx, options);
                features = extractor.Compute([samples])[0];
            }
            catch (Exception e)
            {
                err.WriteLine($"omni mfcc: failed on the device: {e.Message}");
                return 3;
            }
            try
            {
                NpyFile.Write(outPath, new NpyArray(NpyDType.Float32, [features.Rows, features.Frames], features.Values));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                err.WriteLine($"omni mfcc: cannot write {outPath}: {e.Message}");
                return 2;
            }
            o.WriteLine($"wrote {outPath} ({features.Rows}x{features.Frames}, float32)");
            return 0;
        });
        return command;
    }

    private static Command PreprocessCommand(Option<string?> device, TextWriter o, TextWriter err)
    {
        var image = new Option<string>("--image") { Description = "PNG, JPEG, GIF or WebP", Required = true };
        var output = new Option<string>("--out") { Description = "output .npy, float32 [C, crop, crop]", Required = true };
        var size = new Option<int?>("--size") { Description = "shortest side after resizing (default with --clip: 224)" };
        var crop = new Option<int?>("--crop") { Description = "centre crop (default: --size)" };
        var mean = new Option<float[]>("--mean") { Description = "per-channel mean (with --std)", AllowMultipleArgumentsPerToken = true };
        var std = new Option<float[]>("--std") { Description = "per-channel std (with --mean)", AllowMultipleArgumentsPerToken = true };
        var filter = new Option<string>("--filter") { Description = "bicubic or bilinear (Pillow's)", DefaultValueFactory = _ => "bicubic" };
        var channels = new Option<int>("--channels") { Description = "1 (gray), 3 (RGB) or 4 (RGBA)", DefaultValueFactory = _ => 3 };
        var clip = new Option<bool>("--clip") { Description = "CLIP's preprocessing: 224, bicubic, CLIP's mean and std" };
        var command = new Command("preprocess", "Decode an image and, on the device, resize its shortest side, centre-crop, rescale and normalize")
        {
            image, output, size, crop, mean, std, filter, channels, clip, device,
        };
        command.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            ImagePreprocessOptions options;
            Images.DecodedImage decoded;
            DeviceKind kind;
            try
            {
                kind = DeviceKinds.Resolve(r.GetValue(device));
                if (kind == DeviceKind.Reference) throw new ArgumentException("preprocess has no float64 reference device; its reference is Pillow (tools/make_image_vectors.py)");
                var m = r.GetValue(mean);
                var sd = r.GetValue(std);
                if ((m is { Length: > 0 }) != (sd is { Length: > 0 })) throw new ArgumentException("--mean and --std go together");
                var resize = r.GetValue(filter)!.ToLowerInvariant() switch
                {
                    "bicubic" => ResizeFilter.Bicubic,
                    "bilinear" => ResizeFilter.Bilinear,
                    var f => throw new ArgumentException($"--filter {f}: expected bicubic or bilinear"),
                };
                if (r.GetValue(clip))
                {
                    var preset = ClipPreset.Options();
                    int side = r.GetValue(size) ?? preset.Size;
                    options = preset with { Size = side, Crop = r.GetValue(crop) ?? side };
                }
                else
                {
                    int side = r.GetValue(size) ?? throw new ArgumentException("--size is required without --clip");
                    options = new ImagePreprocessOptions(side, r.GetValue(crop) ?? side, resize,
                        m is { Length: > 0 } ? m : null, sd is { Length: > 0 } ? sd : null);
                }
                if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(outPath))))
                    throw new ArgumentException($"--out {outPath}: directory does not exist");
                decoded = ImageFile.Read(r.GetValue(image)!, r.GetValue(channels));
            }
            catch (Exception e) when (e is ArgumentException or ImageFormatException)
            {
                err.WriteLine($"omni preprocess: {e.Message}");
                return 2;
            }
            float[] pixels;
            try
            {
                using var ctx = DeviceContext.Create(kind);
                using var pre = ImagePreprocessor.Create(ctx, options);
                pixels = pre.RunToHost(decoded);
            }
            catch (ArgumentException e)
            {
                err.WriteLine($"omni preprocess: {e.Message}");
                return 2;
            }
            catch (Exception e)
            {
                err.WriteLine($"omni preprocess: failed on the device: {e.Message}");
                return 3;
            }
            try
            {
                NpyFile.Write(outPath, new NpyArray(NpyDType.Float32, [decoded.Channels, options.Crop, options.Crop], pixels));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                err.WriteLine($"omni preprocess: cannot write {outPath}: {e.Message}");
                return 2;
            }
            o.WriteLine($"wrote {outPath} ({decoded.Channels}x{options.Crop}x{options.Crop}, float32)");
            return 0;
        });
        return command;
    }

    private static MelScale ParseScale(string s) => s.ToLowerInvariant() switch
    {
        "htk" => MelScale.Htk,
        "slaney" => MelScale.Slaney,
        _ => throw new ArgumentException($"--mel-scale {s}: expected htk or slaney"),
    };

    private static MelNorm ParseNorm(string s) => s.ToLowerInvariant() switch
    {
        "none" => MelNorm.None,
        "slaney" => MelNorm.Slaney,
        _ => throw new ArgumentException($"--mel-norm {s}: expected none or slaney"),
    };

    private static int Devices(TextWriter o)
    {
        using var context = DeviceCatalog.CreateContext();
        var list = DeviceCatalog.List(context);
        var env = Environment.GetEnvironmentVariable(DeviceKinds.EnvironmentVariable);
        o.WriteLine($"{"",2}{"kind",-8}{"device",-50}self-test");
        for (int i = 0; i < list.Count; i++)
        {
            var e = list[i];
            string self;
            try
            {
                using var ctx = DeviceContext.Create(context, e, ownsContext: false);
                self = $"passed in {ctx.SelfTest.Elapsed.TotalMilliseconds:F0} ms ({ctx.SelfTest.Detail})";
            }
            catch (Exception ex)
            {
                self = "FAILED: " + ex.Message;
            }
            string name = e.Name + (e.IsPocl ? " (PoCL)" : "");
            o.WriteLine($"{(i == 0 ? "*" : " "),-2}{e.Kind.Name(),-8}{name,-50}{self}");
        }
        o.WriteLine("* = picked by auto" + (string.IsNullOrWhiteSpace(env) ? "" : $"; {DeviceKinds.EnvironmentVariable}={env} overrides it"));
        if (list.Count > 0 && list[0].Kind == DeviceKind.Cpu) o.WriteLine(DeviceCatalog.EmulatorWarning);
        return 0;
    }

    private static int ListOps(TextWriter o)
    {
        foreach (var op in OpCatalog.All)
        {
            o.WriteLine($"{op.Name}: {op.Summary}");
            foreach (var i in op.Inputs) o.WriteLine($"    --in {i.Name}=FILE.npy{(i.Required ? "" : " (optional)")}  {i.Doc}");
            foreach (var p in op.ParamNames) o.WriteLine($"    --param {p}");
        }
        return 0;
    }

    private static int RunOp(string name, string[] inputs, string output, string[] parameters, string? deviceName, string? scheduleName, TextWriter o, TextWriter err)
    {
        BoundOp bound;
        DeviceKind kind;
        KernelSchedule? schedule;
        try
        {
            var op = OpCatalog.Find(name);
            kind = DeviceKinds.Resolve(deviceName);
            schedule = KernelSchedules.Parse(scheduleName);
            var dict = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var spec in inputs)
            {
                int eq = spec.IndexOf('=');
                if (eq <= 0) throw new OpInputException($"--in '{spec}' must be NAME=FILE.npy");
                var key = spec[..eq];
                if (dict.ContainsKey(key)) throw new OpInputException($"--in {key} given twice");
                dict[key] = ToHost(NpyFile.Read(spec[(eq + 1)..]), key);
            }
            if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(output))))
                throw new OpInputException($"--out {output}: directory does not exist");
            if (Directory.Exists(output))
                throw new OpInputException($"--out {output} is a directory");
            bound = op.Bind(dict, OpParams.Parse(parameters));
        }
        catch (Exception e) when (e is OpInputException or NpyFormatException or ArgumentException)
        {
            err.WriteLine($"omni op: {e.Message}");
            return 2;
        }

        NpyArray result;
        string where;
        try
        {
            if (kind == DeviceKind.Reference)
            {
                result = ToNpy(bound, bound.OutputType == DType.F32 ? bound.RunReference().Select(v => (float)v).ToArray() : bound.RunReferenceIntegers());
                where = "reference (float64, exact integers)";
            }
            else
            {
                using var ctx = DeviceContext.Create(kind, schedule);
                if (ctx.Kind == DeviceKind.Cpu && kind == DeviceKind.Auto) err.WriteLine(DeviceCatalog.EmulatorWarning);
                result = ToNpy(bound, bound.OutputType == DType.F32 ? bound.RunDevice(ctx) : bound.RunDeviceIntegers(ctx));
                where = $"{ctx.Entry} ({ctx.Schedule.Name()} schedule)";
            }
        }
        catch (ArgumentException e)
        {
            err.WriteLine($"omni op: {e.Message}");
            return 2;
        }
        catch (Exception e)
        {
            err.WriteLine($"omni op: {name} failed on the device: {e.Message}");
            return 3;
        }
        try
        {
            foreach (var (path, _, _) in bound.SideOutputs)
                if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path))) || Directory.Exists(path))
                    throw new IOException($"{path}: not a writable file path");
            NpyFile.Write(output, result);
            foreach (var (path, data, shape) in bound.SideOutputs)
                NpyFile.Write(path, new NpyArray(NpyDType.Float32, shape, data));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"omni op: cannot write: {e.Message}");
            return 2;
        }
        o.WriteLine($"{name} on {where}: wrote {output} ({string.Join("x", bound.OutputShape)}, {result.DType.ToString().ToLowerInvariant()})"
            + string.Concat(bound.SideOutputs.Select(x => $" and {x.Path}")));
        return 0;
    }

    private static NpyArray ToNpy(BoundOp bound, Array values) => bound.OutputType switch
    {
        DType.F32 => new NpyArray(NpyDType.Float32, bound.OutputShape, values),
        DType.I8 => new NpyArray(NpyDType.Int8, bound.OutputShape, ((int[])values).Select(v => (sbyte)v).ToArray()),
        DType.I32 => new NpyArray(NpyDType.Int32, bound.OutputShape, values),
        _ => throw new NotSupportedException($"output type {bound.OutputType}"),
    };

    private static HostTensor ToHost(NpyArray a, string name)
    {
        var shape = a.Shape.ToArray();
        if (shape.Length == 0) throw new OpInputException($"input '{name}' is a scalar; ops take arrays");
        return a.DType switch
        {
            NpyDType.Float32 or NpyDType.Float64 => new HostTensor(shape, a.ToFloat32(name)),
            _ => new HostTensor(shape, a.ToInt32(name)),
        };
    }

    private static int RunSelfCheck(string? deviceName, int size, TextWriter o, TextWriter err)
    {
        DeviceKind kind;
        try
        {
            kind = DeviceKinds.Resolve(deviceName);
            if (kind == DeviceKind.Reference) throw new ArgumentException("selfcheck compares a device against the reference; pick a device");
            if (size < 1) throw new ArgumentException($"--size must be positive, got {size}");
        }
        catch (ArgumentException e)
        {
            err.WriteLine($"omni selfcheck: {e.Message}");
            return 2;
        }
        try
        {
            using var ctx = DeviceContext.Create(kind);
            if (ctx.Kind == DeviceKind.Cpu) err.WriteLine(DeviceCatalog.EmulatorWarning);
            var r = SelfCheck.Run(ctx, ctx.Kind == DeviceKind.Cpu ? Math.Min(size, 67) : size);
            var inv = CultureInfo.InvariantCulture;
            o.WriteLine($"device     {r.Device}{(r.Device.IsPocl ? " (PoCL)" : "")}");
            o.WriteLine($"self-test  {(r.SelfTest.Passed ? "passed" : "FAILED")}: {r.SelfTest.Detail}");
            o.WriteLine(string.Format(inv, "gemm       {0}: relative error {1:E2} (tolerance {2:E0}) {3}", r.Shape, r.RelativeError, r.Tolerance, r.Passed ? "ok" : "FAILED"));
            o.WriteLine(string.Format(inv, "time       {0:F3} ms median of {1} runs, {2:F1} GFLOP/s", r.MedianMs, r.Runs, r.GFlops));
            return r.Passed ? 0 : 1;
        }
        catch (Exception e)
        {
            err.WriteLine($"omni selfcheck: {e.Message}");
            return 3;
        }
    }
}
