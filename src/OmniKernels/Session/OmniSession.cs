using System.Diagnostics;
using OmniKernels.Audio;
using OmniKernels.Graph;
using OmniKernels.Images;
using OmniKernels.Kernels;
using OmniKernels.Model;

namespace OmniKernels.Session;

/// <summary>How a session loads its model.</summary>
public sealed record OmniSessionOptions
{
    /// <summary>The device to create (ignored when <see cref="Context"/> is given).</summary>
    public DeviceKind Device { get; init; } = DeviceKind.Auto;

    /// <summary>An existing device to run on; the session then does not own or dispose it.</summary>
    public DeviceContext? Context { get; init; }

    /// <summary>Quantize every Linear weight to INT8 at load (an INT8 checkpoint is INT8 either way).</summary>
    public bool Int8 { get; init; }

    /// <summary>Load only these towers (null: all the model has); a request for another modality is an error.</summary>
    public IReadOnlySet<Modality>? Towers { get; init; }

    /// <summary>Largest decoded image or video frame accepted, in pixels.</summary>
    public long MaxImagePixels { get; init; } = 64L * 1024 * 1024;

    /// <summary>Most decoded frames a clip may carry before sampling.</summary>
    public int MaxVideoFrames { get; init; } = 4096;

    /// <summary>Longest audio accepted, in seconds (longer clips are trimmed to the tower's input after this check).</summary>
    public double MaxAudioSeconds { get; init; } = 600;

    /// <summary>How long the first request of a window waits for others to batch with (0: no waiting).</summary>
    public TimeSpan MaxQueueDelay { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Most requests one tower launch batches; a window is at most four such batches.</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>Most requests waiting; one more is rejected at once with <see cref="QueueFullException"/>.</summary>
    public int MaxQueueSize { get; init; } = 1024;

    /// <summary>A request still queued after this long fails with <see cref="TimeoutException"/> (null: no limit).</summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>Byte budget of the session's own feature cache (0: no cache); ignored when <see cref="FeatureCache"/> is given.</summary>
    public long FeatureCacheBytes { get; init; } = 64L << 20;

    /// <summary>A cache shared with other sessions; the caller keeps it.</summary>
    public FeatureCache? FeatureCache { get; init; }

    /// <summary>The resampling filter of image preprocessing (part of the feature cache's key).</summary>
    public ResizeFilter ImageResize { get; init; } = ResizeFilter.Bicubic;
}

/// <summary>
/// An omni-modal model loaded once on one device and run for many requests. Thread-safe: any number
/// of threads may call <see cref="Run"/>; requests take turns on the device (one stream). Owns the
/// model's device memory, its execution plans and (unless given one) the device: dispose it once, after
/// the last call. A failed load frees what it had taken before throwing.
/// </summary>
public sealed class OmniSession : IDisposable
{
    private readonly DeviceContext _ctx;
    private readonly bool _ownsContext;
    private readonly OmniModel _model;
    private readonly Dictionary<Modality, ImagePreprocessor> _images = [];
    private readonly AudioFeatureExtractor? _audio;
    private readonly Executor _executor;
    private readonly OmniSessionOptions _options;
    private readonly Lock _device = new();
    private readonly Batcher _batcher;
    private readonly FeatureCache? _cache;
    private readonly UInt128 _identity;
    private readonly Dictionary<string, (long Batches, long Items)> _batches = [];
    private bool _disposed;

    private OmniSession(DeviceContext ctx, bool owns, OmniModel model, OmniSessionOptions options)
    {
        _ctx = ctx;
        _ownsContext = owns;
        _model = model;
        _options = options;
        _executor = new Executor(ctx, model);
        _cache = options.FeatureCache ?? (options.FeatureCacheBytes > 0 ? new FeatureCache(options.FeatureCacheBytes) : null);
        _identity = _cache is null ? default : FeatureCache.ModelIdentity(model.Directory);
        try
        {
            foreach (var (m, t) in model.Towers)
            {
                var vision = t switch { ClipVisionTower v => v, VideoFramesTower f => f.Image, _ => null };
                if (vision is null) continue;
                _images[m] = ImagePreprocessor.Create(ctx, new ImagePreprocessOptions(vision.ImageSize, vision.ImageSize, options.ImageResize,
                    vision.Mean ?? [.. ClipPreset.Mean], vision.Std ?? [.. ClipPreset.Std]));
            }
            if (model.Towers.GetValueOrDefault(Modality.Audio) is WhisperEncoderTower w)
                _audio = new AudioFeatureExtractor(ctx, AudioFeatureOptions.Whisper with { NMels = w.Mels, SampleRate = w.SampleRate });
            if (options.MaxBatch < 1) throw new ArgumentException($"MaxBatch {options.MaxBatch} must be at least 1");
            if (options.MaxQueueSize < 1) throw new ArgumentException($"MaxQueueSize {options.MaxQueueSize} must be at least 1");
            _batcher = new Batcher(options, ProcessWindow);
        }
        catch
        {
            DisposeParts();
            throw;
        }
    }

    /// <summary>
    /// Loads the model folder <paramref name="modelDir"/> (docs/model-format.md) onto the options' device.
    /// </summary>
    /// <exception cref="ModelFormatException">The folder, its config or its weights are wrong; the message names the file and the key or tensor.</exception>
    public static OmniSession Load(string modelDir, OmniSessionOptions? options = null)
    {
        options ??= new OmniSessionOptions();
        var ctx = options.Context ?? DeviceContext.Create(options.Device);
        bool owns = options.Context is null;
        OmniModel? model = null;
        try
        {
            model = OmniModel.Load(ctx, modelDir, options.Int8, options.Towers);
            return new OmniSession(ctx, owns, model, options);
        }
        catch
        {
            model?.Dispose();
            if (owns) ctx.Dispose();
            throw;
        }
    }

    /// <summary>The model's name (its folder).</summary>
    public string ModelName => _model.Name;

    /// <summary>The device requests run on.</summary>
    public DeviceContext Device => _ctx;

    /// <summary>
    /// Runs <paramref name="work"/> on the session's device under the lock the batcher holds while it
    /// launches, so that other launches (an index search) never interleave with a request's on the
    /// stream. Keep it short: requests wait meanwhile.
    /// </summary>
    public T OnDevice<T>(Func<DeviceContext, T> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_device) return work(_ctx);
    }

    /// <summary>The modalities the loaded towers accept.</summary>
    public IReadOnlyCollection<Modality> Modalities => _model.Towers.Keys;

    /// <summary>Class labels of the model's classifier (empty without one).</summary>
    public IReadOnlyList<string> Labels => _model.Labels;

    /// <summary>Checkpoint tensors no module used (HF's position_ids buffers, or a naming mismatch).</summary>
    public IReadOnlyList<string> UnusedTensors => _model.UnusedTensors;

    /// <summary>Device bytes of the cached execution plans' arenas, and what their values would take unshared.</summary>
    public (long Arena, long Unshared) PlanBytes => _executor.PlanBytes;

    /// <summary>Each cached plan's arena bytes: what tests need to tell plan growth from a leak.</summary>
    internal long[] PlanArenas
    {
        get
        {
            lock (_device) return _executor.PlanArenas;
        }
    }

    /// <summary>Tokenizes text with the model's tokenizer (start and end tokens included, truncated to the context).</summary>
    public int[] Tokenize(string text)
    {
        var tower = _model.Towers.GetValueOrDefault(Modality.Text) as ClipTextTower ?? throw new ArgumentException("the model has no text tower");
        var tok = _model.Tokenizer ?? throw new ArgumentException("the model has no tokenizer");
        return tok.Encode(text, tower.ContextLength);
    }

    /// <summary>The feature cache's counters, or null without a cache.</summary>
    public FeatureCacheStats? CacheStats => _cache?.Stats;

    /// <summary>Tower and fusion launches the batcher made, and the requests they carried (mean batch = items / batches).</summary>
    public IReadOnlyDictionary<string, (long Batches, long Items)> BatchStats
    {
        get
        {
            lock (_batches) return new Dictionary<string, (long, long)>(_batches);
        }
    }

    /// <summary>
    /// Runs the request and waits for it: <see cref="RunAsync"/> through the same batcher.
    /// </summary>
    public OmniResult Run(OmniRequest request) => RunAsync(request).GetAwaiter().GetResult();

    /// <summary>
    /// Queues <paramref name="request"/> for the batcher: the towers of the modalities it carries
    /// (no other tower is launched) run once per window over every request that carries them, the
    /// fusion and heads once per modality set; the result is this request's alone, equal to what it
    /// gives when run by itself. Bad input throws <see cref="ArgumentException"/> at once, naming what
    /// is wrong; a full queue throws <see cref="QueueFullException"/>; cancelling drops the request
    /// (if it has not started) without disturbing the others; past <see cref="OmniSessionOptions.RequestTimeout"/>
    /// in the queue it fails with <see cref="TimeoutException"/>. Thread-safe.
    /// </summary>
    public Task<OmniResult> RunAsync(OmniRequest request, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var present = request.Modalities;
        if (present.Count == 0) throw new ArgumentException("the request carries no modality (image, text, audio or video)");
        foreach (var m in present)
            if (!_model.Towers.ContainsKey(m))
                throw new ArgumentException($"the request carries {Name(m)}, which this session has no tower for (it has: {string.Join(", ", _model.Towers.Keys.Select(Name))})");
        // Host-side checks, tokenization and cache keys happen on the caller's thread.
        var inputs = new Dictionary<Modality, TowerInput>();
        foreach (var m in present)
        {
            var input = Prepare(m, request);
            if (_cache is not null) input.CacheKey = CacheKey(m, request, input);
            inputs[m] = input;
        }
        long deadline = _options.RequestTimeout is { } t ? Stopwatch.GetTimestamp() + (long)(t.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        return _batcher.Enqueue(new PendingRequest(request, inputs, cancel, deadline));
    }

    /// <summary>One window on the batcher's thread: towers batched by modality, the fusion by modality set.</summary>
    private void ProcessWindow(List<PendingRequest> window)
    {
        lock (_device)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long start = Stopwatch.GetTimestamp();
            var profile = window.Any(p => p.Request.Profile) ? new Profile() : null;
            var outputs = window.Select(_ => new Dictionary<Modality, TowerOutput>()).ToArray();
            var timings = window.Select(p => new Dictionary<string, double> { ["queue"] = Stopwatch.GetElapsedTime(p.Enqueued, start).TotalMilliseconds }).ToArray();
            foreach (var m in _model.Modalities.Where(_model.Towers.ContainsKey))
            {
                var need = new List<int>();
                for (int i = 0; i < window.Count; i++)
                {
                    if (!window[i].Inputs.TryGetValue(m, out var input)) continue;
                    if (_cache is not null && _cache.TryGet(input.CacheKey, out var hit)) outputs[i][m] = hit;
                    else need.Add(i);
                }
                foreach (var chunk in need.Chunk(_options.MaxBatch))
                {
                    long s = Stopwatch.GetTimestamp();
                    foreach (int i in chunk) PreprocessOnDevice(m, window[i].Inputs[m]);
                    var results = _executor.RunTower(m, chunk.Select(i => window[i].Inputs[m]).ToArray(), profile);
                    double ms = Stopwatch.GetElapsedTime(s).TotalMilliseconds;
                    for (int j = 0; j < chunk.Length; j++)
                    {
                        outputs[chunk[j]][m] = results[j];
                        timings[chunk[j]][Name(m)] = ms;
                        _cache?.Add(window[chunk[j]].Inputs[m].CacheKey, results[j]);
                    }
                    Count(Name(m), chunk.Length);
                }
            }
            var fused = new FusionOutput?[window.Count];
            foreach (var group in Enumerable.Range(0, window.Count).GroupBy(i => _executor.FusionMask(outputs[i].Keys)).Where(g => g.Key != 0))
                foreach (var chunk in group.Chunk(_options.MaxBatch))
                {
                    long s = Stopwatch.GetTimestamp();
                    var results = _executor.RunFusion(group.Key, chunk.Select(i => (IReadOnlyDictionary<Modality, TowerOutput>)outputs[i]).ToArray(), profile);
                    double ms = Stopwatch.GetElapsedTime(s).TotalMilliseconds;
                    for (int j = 0; j < chunk.Length; j++)
                    {
                        fused[chunk[j]] = results[j];
                        timings[chunk[j]]["fusion"] = ms;
                    }
                    Count("fusion", chunk.Length);
                }
            for (int i = 0; i < window.Count; i++)
            {
                timings[i]["total"] = Stopwatch.GetElapsedTime(window[i].Enqueued).TotalMilliseconds;
                window[i].Result.TrySetResult(Assemble(window[i].Request.Modalities, outputs[i], fused[i], timings[i], window[i].Request.Profile ? profile : null));
            }
        }
    }

    private void Count(string what, int items)
    {
        lock (_batches)
        {
            var (b, n) = _batches.GetValueOrDefault(what);
            _batches[what] = (b + 1, n + items);
        }
    }

    /// <summary>What a tower's output depends on besides the model: the preprocessing options and the input's bytes.</summary>
    private UInt128 CacheKey(Modality m, OmniRequest r, TowerInput input)
    {
        static ReadOnlyMemory<byte> Bytes<T>(T[] a) where T : unmanaged =>
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).ToArray();
        var tower = _model.Towers[m];
        string options = tower switch
        {
            WhisperEncoderTower a => $"whisper mels={a.Mels} positions={a.Positions} rate={a.SampleRate} in={r.Audio!.SampleRate} logmel={r.Audio.LogMel is not null}",
            _ when _images.TryGetValue(m, out var pre) => $"image {pre.Options.Size} {pre.Options.Crop} {pre.Options.Filter} {string.Join(',', pre.Options.Mean!)} {string.Join(',', pre.Options.Std!)} {pre.Options.CropRounding}",
            _ => tower.GetType().Name,
        };
        var parts = new List<ReadOnlyMemory<byte>>();
        if (input.Ids is { } ids) parts.Add(Bytes(ids));
        if (input.Pixels is { } px) parts.Add(Bytes(px));
        if (input.Waveform is { } w) parts.Add(Bytes(w));
        if (input.LogMel is { } mel) parts.Add(Bytes(mel));
        parts.Add(Bytes([input.ValidPositions]));
        foreach (var d in input.Decoded ?? [])
        {
            parts.Add(Bytes([d.Width, d.Height, d.Channels]));
            parts.Add(d.Pixels);
        }
        return FeatureCache.Key(_identity, Name(m), options, [.. parts]);
    }

    private TowerInput Prepare(Modality m, OmniRequest r)
    {
        var tower = _model.Towers[m];
        switch (tower)
        {
            case ClipTextTower text:
            {
                var ids = r.TextIds ?? Tokenize(r.Text!);
                text.Validate(ids);
                return new TowerInput { Ids = ids };
            }
            case WhisperEncoderTower audio:
            {
                var a = r.Audio!;
                if (a.LogMel is { } mel)
                {
                    if (mel.Length != audio.Mels * 2 * audio.Positions)
                        throw new ArgumentException($"audio log-mel has {mel.Length} values; the model takes [{audio.Mels}, {2 * audio.Positions}]");
                    return new TowerInput { LogMel = mel, ValidPositions = audio.ValidPositions(a.LogMelSamples ?? audio.InputSamples) };
                }
                var samples = a.Samples ?? throw new ArgumentException("audio has neither samples nor a log-mel");
                if (a.SampleRate <= 0) throw new ArgumentException($"audio sample rate {a.SampleRate} must be positive");
                if (samples.Length == 0) throw new ArgumentException("audio has no samples");
                if (samples.Length > _options.MaxAudioSeconds * a.SampleRate)
                    throw new ArgumentException($"audio lasts {samples.Length / (double)a.SampleRate:F1} s; the session accepts at most {_options.MaxAudioSeconds} s");
                foreach (float x in samples) if (!float.IsFinite(x)) throw new ArgumentException("audio holds a non-finite sample");
                var at = a.SampleRate == audio.SampleRate ? samples : Resampler.Resample(samples, a.SampleRate, audio.SampleRate);
                // Whisper's feature extractor: zero-pad or trim the waveform to the encoder's input first.
                var padded = new float[audio.InputSamples];
                at.AsSpan(0, Math.Min(at.Length, padded.Length)).CopyTo(padded);
                return new TowerInput { Waveform = padded, ValidPositions = audio.ValidPositions(at.Length) };
            }
            case ClipVisionTower vision:
                return PrepareImage(vision, r.Image!);
            case VideoFramesTower video:
                return PrepareVideo(video.Image.Channels, video.Image.ImageSize, video.Frames, r.Video!);
            case VideoTubeletTower tubelet:
                return PrepareVideo(tubelet.Channels, tubelet.ImageSize, tubelet.Frames, r.Video!);
            default:
                throw new InvalidOperationException($"no input preparation for {tower.GetType().Name}");
        }
    }

    private TowerInput PrepareImage(ClipVisionTower vision, ImageInput image)
    {
        if (image.Pixels is { } px)
        {
            long need = (long)vision.Channels * vision.ImageSize * vision.ImageSize;
            if (px.Length != need) throw new ArgumentException($"image pixels have {px.Length} values; the model takes [{vision.Channels}, {vision.ImageSize}, {vision.ImageSize}]");
            return new TowerInput { Pixels = px };
        }
        var d = image.Decoded ?? throw new ArgumentException("image has neither decoded nor preprocessed pixels");
        CheckDecoded(d, "image");
        return new TowerInput { Decoded = [d] };
    }

    private TowerInput PrepareVideo(int channels, int size, int frames, VideoInput video)
    {
        if (video.Frames is { } f)
        {
            long need = (long)frames * channels * size * size;
            if (f.Length != need) throw new ArgumentException($"video frames have {f.Length} values; the model takes [{frames}, {channels}, {size}, {size}]");
            return new TowerInput { Pixels = f };
        }
        var d = video.Decoded ?? throw new ArgumentException("video has neither decoded nor preprocessed frames");
        if (d.Count == 0) throw new ArgumentException("video has no frames");
        if (d.Count > _options.MaxVideoFrames) throw new ArgumentException($"video has {d.Count} frames; the session accepts at most {_options.MaxVideoFrames}");
        foreach (var frame in d) CheckDecoded(frame, "video frame");
        // Uniform sampling: frame i of T is the middle of the i-th of T equal spans of the clip.
        var picked = Enumerable.Range(0, frames).Select(i => d[(int)Math.Min(d.Count - 1, (long)(2 * i + 1) * d.Count / (2 * frames))]).ToArray();
        return new TowerInput { Decoded = picked };
    }

    private void CheckDecoded(DecodedImage d, string what)
    {
        if ((long)d.Width * d.Height > _options.MaxImagePixels)
            throw new ArgumentException($"{what} of {d.Width}×{d.Height} exceeds the session's limit of {_options.MaxImagePixels} pixels");
    }

    /// <summary>Device-side front ends: image preprocessing into the plan's input, the log-mel of a waveform.</summary>
    private void PreprocessOnDevice(Modality m, TowerInput input)
    {
        if (input.Waveform is { } wave)
        {
            var mel = _audio!.Compute([wave])[0];
            input.LogMel = mel.Values;
        }
        if (input.Decoded is { } frames)
        {
            var pre = _images[m];
            var channels = pre.Options.Mean!.Length;
            var pixels = new float[frames.Length * channels * pre.Options.Crop * pre.Options.Crop];
            int per = pixels.Length / frames.Length;
            for (int i = 0; i < frames.Length; i++)
                pre.RunToHost(ImageFile.ConvertChannels(frames[i], channels)).CopyTo(pixels.AsSpan(i * per, per));
            input.Pixels = pixels;
        }
    }

    private OmniResult Assemble(IReadOnlyList<Modality> present, Dictionary<Modality, TowerOutput> outputs, FusionOutput? fusion,
        Dictionary<string, double> timings, Profile? profile)
    {
        var order = _model.Modalities.Where(present.Contains).ToArray();
        var sims = new Dictionary<string, float>();
        var logits = _model.LogitScale is null ? null : new Dictionary<string, float>();
        for (int i = 0; i < order.Length; i++)
            for (int j = i + 1; j < order.Length; j++)
            {
                var (a, b) = (outputs[order[i]].Embedding, outputs[order[j]].Embedding);
                double dot = 0;
                for (int k = 0; k < a.Length; k++) dot += (double)a[k] * b[k];
                string key = $"{Name(order[i])}-{Name(order[j])}";
                sims[key] = (float)dot;
                if (logits is not null) logits[key] = (float)(dot * _model.LogitScale!.Value);
            }
        var classes = fusion?.Probabilities is { } p
            ? p.Select((x, i) => new ClassScore(_model.Labels[i], x)).OrderByDescending(c => c.Probability).ToArray()
            : [];
        return new OmniResult
        {
            Model = _model.Name,
            Device = _ctx.ToString(),
            TowersRun = order,
            // Copies: tower outputs may live on in the feature cache.
            Embeddings = order.ToDictionary(m => m, m => outputs[m].Embedding.ToArray()),
            Fused = fusion?.Fused,
            Gates = fusion?.Gates,
            Logits = fusion?.Logits,
            GateWeights = fusion is null ? null : GateWeights(fusion.Gates, present),
            Classes = classes,
            Similarities = sims,
            SimilarityLogits = logits,
            TimingsMs = timings,
            Profile = profile?.Nodes,
        };
    }

    private Dictionary<Modality, float> GateWeights(float[] gates, IReadOnlyList<Modality> present)
    {
        var inputs = _model.Fusion!.Inputs;
        int block = gates.Length / inputs.Count;
        return inputs.Select((m, i) => (m, i)).Where(t => present.Contains(t.m))
            .ToDictionary(t => t.m, t => gates.Skip(t.i * block).Take(block).Average());
    }

    /// <summary>The lower-case name of a modality, as results and the CLI spell it.</summary>
    public static string Name(Modality m) => m.ToString().ToLowerInvariant();

    private void DisposeParts()
    {
        _executor.Dispose();
        foreach (var p in _images.Values) p.Dispose();
        _audio?.Dispose();
        _model.Dispose();
        if (_ownsContext) _ctx.Dispose();
    }

    /// <summary>Frees the plans, the model's device memory and (if owned) the device. Waits for a running request.</summary>
    public void Dispose()
    {
        // The batcher finishes its window (which takes the device lock) before the parts go.
        lock (_batches)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _batcher.Dispose();
        lock (_device) DisposeParts();
    }
}
