using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Model;

namespace OmniKernels.Session;

/// <summary>One request's input to a tower, prepared on the host (and by the device front ends).</summary>
internal sealed class TowerInput
{
    public int[]? Ids { get; init; }

    public float[]? Pixels { get; set; }

    public Images.DecodedImage[]? Decoded { get; init; }

    public float[]? Waveform { get; init; }

    public float[]? LogMel { get; set; }

    public int ValidPositions { get; init; }

    /// <summary>The feature cache's key of this input (set when the session has a cache).</summary>
    public UInt128 CacheKey { get; set; }
}

/// <summary>A tower's results for one request: the embedding, and token states [S, W] with their real count where the fusion reads them.</summary>
internal sealed record TowerOutput(float[] Embedding, float[]? Tokens, Shape? TokenShape, int TokenCount)
{
    /// <summary>Host bytes the output holds (what the feature cache charges for it).</summary>
    public long Bytes => 4L * (Embedding.Length + (Tokens?.Length ?? 0)) + 64;
}

/// <summary>The fusion's and heads' results for one request.</summary>
internal sealed record FusionOutput(float[] Fused, float[] Gates, float[]? Logits, float[]? Probabilities);

/// <summary>
/// Builds and caches an execution plan per signature (tower or fusion, modality set, batch, padded
/// length) on first use and replays it after: no recording, compile or device allocation in the
/// steady state. Text lengths go to buckets of 8 tokens so that a new length rarely means a new plan.
/// Not thread-safe: the session calls it under its device lock.
/// </summary>
internal sealed class Executor(DeviceContext ctx, OmniModel model) : IDisposable
{
    private const int TextBucket = 8;
    private readonly Dictionary<(Modality? Tower, uint Mask, int Batch, int Length), (ExecutionPlan Plan, ValueId[] Inputs, ValueId[] Outputs)> _plans = [];

    public (long Arena, long Unshared) PlanBytes => (_plans.Values.Sum(p => p.Plan.ArenaBytes), _plans.Values.Sum(p => p.Plan.IntermediateBytes));

    /// <summary>Each cached plan's arena bytes (0 for a plan without one), in no particular order.</summary>
    public long[] PlanArenas => _plans.Values.Select(p => p.Plan.ArenaBytes).ToArray();

    private bool FusionReadsTokens(Modality m) => model.Fusion is { ReadsTokens: true } f && f.Inputs.Contains(m);

    /// <summary>The plan batch for <paramref name="count"/> items: the next power of two, so that a few plans cover every batch size.</summary>
    private static int Bucket(int count) => (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)count);

    /// <summary>
    /// Runs tower <paramref name="m"/> once over <paramref name="items"/> (padded to the plan's batch
    /// with copies of the last item, whose results are dropped) and returns one output per item.
    /// </summary>
    public TowerOutput[] RunTower(Modality m, IReadOnlyList<TowerInput> items, Profile? profile)
    {
        var tower = model.Towers[m];
        int n = items.Count, batch = Bucket(n);
        int length = 0;
        if (tower is ClipTextTower textTower)
        {
            int longest = items.Max(i => i.Ids!.Length);
            length = Math.Min(textTower.ContextLength, (longest + TextBucket - 1) / TextBucket * TextBucket);
        }
        bool tokens = FusionReadsTokens(m);
        var (plan, inputs, outputs) = Plan((m, 0, batch, length), () =>
        {
            var g = new GraphBuilder();
            var r = tower.Record(g, batch, length, tokens);
            g.Output(r.Embedding);
            if (r.Tokens is { } t) g.Output(t);
            return (g, r.Inputs, r.Tokens is { } tt ? [r.Embedding, tt] : [r.Embedding]);
        });
        TowerInput Item(int b) => items[Math.Min(b, n - 1)];
        switch (tower)
        {
            case ClipTextTower text:
            {
                var ids = new int[batch * length];
                var pool = new int[batch];
                for (int b = 0; b < batch; b++)
                {
                    Item(b).Ids!.CopyTo(ids, b * length);
                    pool[b] = text.PoolIndex(Item(b).Ids);
                }
                plan.Upload<int>(inputs[0], ids);
                plan.Upload<int>(inputs[1], pool);
                break;
            }
            case WhisperEncoderTower audio:
            {
                // One zero column each side of every mel row: conv1's padding, read in place.
                int frames = 2 * audio.Positions, per = audio.Mels * (frames + 2);
                var mel = new float[batch * per];
                var counts = new int[batch];
                for (int b = 0; b < batch; b++)
                {
                    var item = Item(b);
                    for (int c = 0; c < audio.Mels; c++) item.LogMel.AsSpan(c * frames, frames).CopyTo(mel.AsSpan(b * per + c * (frames + 2) + 1));
                    counts[b] = item.ValidPositions;
                }
                plan.Upload<float>(inputs[0], mel);
                plan.Upload<int>(inputs[1], counts);
                break;
            }
            default:
            {
                int per = Item(0).Pixels!.Length;
                var pixels = new float[batch * per];
                for (int b = 0; b < batch; b++)
                {
                    var px = Item(b).Pixels!;
                    (tower is VideoTubeletTower t ? FramesToChannels(px, t.Frames, t.Channels) : px).CopyTo(pixels, b * per);
                }
                plan.Upload<float>(inputs[0], pixels);
                break;
            }
        }
        plan.Run(profile);
        ctx.Synchronize();
        int e = tower.ProjectionDim;
        var emb = new float[batch * e];
        plan.Download(outputs[0], emb);
        float[]? states = null;
        Shape shape = default;
        if (outputs.Length > 1)
        {
            var full = plan.Views[outputs[1]].Shape;
            shape = new Shape(full[1], full[2]);
            states = new float[full.Numel];
            plan.Download(outputs[1], states);
        }
        var results = new TowerOutput[n];
        for (int b = 0; b < n; b++)
        {
            var own = emb.AsSpan(b * e, e).ToArray();
            if (states is null) { results[b] = new TowerOutput(own, null, null, 0); continue; }
            long per = shape.Numel;
            results[b] = new TowerOutput(own, states.AsSpan((int)(b * per), (int)per).ToArray(), shape, items[b].Ids?.Length ?? (int)shape[0]);
        }
        return results;
    }

    /// <summary>[T, C, H·W] frames as the Conv3d's [C, T, H·W].</summary>
    private static float[] FramesToChannels(float[] frames, int t, int c)
    {
        int hw = frames.Length / (t * c);
        var y = new float[frames.Length];
        for (int f = 0; f < t; f++)
            for (int ch = 0; ch < c; ch++) frames.AsSpan((f * c + ch) * hw, hw).CopyTo(y.AsSpan((ch * t + f) * hw));
        return y;
    }

    /// <summary>The present-set mask of the fusion's inputs among <paramref name="present"/> (0: the fusion has nothing to fuse).</summary>
    public uint FusionMask(IEnumerable<Modality> present)
    {
        if (model.Fusion is not { } fusion) return 0;
        uint mask = 0;
        var set = present.ToHashSet();
        for (int i = 0; i < fusion.Inputs.Count; i++) if (set.Contains(fusion.Inputs[i])) mask |= 1u << i;
        return mask;
    }

    /// <summary>
    /// Runs the fusion and heads once over <paramref name="items"/>, which all carry the same
    /// modality set (<paramref name="mask"/>); token states of different lengths are zero-padded to the
    /// longest, whose padding the fusion's counts exclude.
    /// </summary>
    public FusionOutput[] RunFusion(uint mask, IReadOnlyList<IReadOnlyDictionary<Modality, TowerOutput>> items, Profile? profile)
    {
        var fusion = model.Fusion!;
        int n = items.Count, batch = Bucket(n);
        var first = items[0];
        var shapes = new Dictionary<Modality, Shape>();
        foreach (var m in fusion.Inputs.Where(first.ContainsKey))
            if (first[m].TokenShape is { } ts)
            {
                long s = items.Max(i => i[m].TokenShape!.Value[0]);
                shapes[m] = new Shape(batch, s, ts[1]);
            }
        int length = shapes.TryGetValue(Modality.Text, out var tsh) ? (int)tsh[1] : 0;
        var (plan, inputs, results) = Plan((null, mask, batch, length), () =>
        {
            var g = new GraphBuilder();
            var r = fusion.Record(g, mask, batch, shapes);
            g.Output(r.Fused);
            g.Output(r.Gates);
            ValueId[] outs = [r.Fused, r.Gates];
            if (model.Classifier is { } head)
            {
                var logits = head.Record(g, "head.classifier", r.Fused);
                var probs = g.Temp("head.probabilities", g.ShapeOf(logits), 1);
                g.Node("head.softmax", 1, [logits], [probs], v => SoftmaxKernel.Launch(v.Device, v[logits], v[probs]));
                g.Output(logits);
                g.Output(probs);
                outs = [.. outs, logits, probs];
            }
            return (g, r.Inputs, outs);
        });
        IReadOnlyDictionary<Modality, TowerOutput> Item(int b) => items[Math.Min(b, n - 1)];
        if (fusion.ReadsTokens)
        {
            int k = 0;
            foreach (var m in fusion.Inputs.Where(first.ContainsKey))
            {
                var shape = shapes[m];
                long per = shape[1] * shape[2];
                var tokens = new float[batch * per];
                for (int b = 0; b < batch; b++) Item(b)[m].Tokens.CopyTo(tokens.AsSpan((int)(b * per)));
                plan.Upload<float>(inputs[k++], tokens);
                if (m == Modality.Text)
                {
                    var counts = new int[batch];
                    for (int b = 0; b < batch; b++) counts[b] = Item(b)[m].TokenCount;
                    plan.Upload<int>(inputs[k++], counts);
                }
            }
        }
        else
        {
            int e = fusion.Width, width = fusion.Inputs.Count * e;
            var z = new float[batch * width];
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < fusion.Inputs.Count; i++)
                    if (Item(b).TryGetValue(fusion.Inputs[i], out var o)) o.Embedding.CopyTo(z, b * width + i * e);
            plan.Upload<float>(inputs[0], z);
        }
        plan.Run(profile);
        ctx.Synchronize();
        var fused = Download(plan, results[0], batch, fusion.Width);
        var gates = Download(plan, results[1], batch, fusion.GateWidth);
        var logits = results.Length > 2 ? Download(plan, results[2], batch, model.Labels.Length) : null;
        var probs = results.Length > 2 ? Download(plan, results[3], batch, model.Labels.Length) : null;
        var outputs = new FusionOutput[n];
        for (int b = 0; b < n; b++)
            outputs[b] = new FusionOutput(fused[b], gates[b], logits?[b], probs?[b]);
        return outputs;
    }

    private static float[][] Download(ExecutionPlan plan, ValueId v, int batch, int width)
    {
        var all = new float[batch * width];
        plan.Download(v, all);
        return Enumerable.Range(0, batch).Select(b => all.AsSpan(b * width, width).ToArray()).ToArray();
    }

    private (ExecutionPlan, ValueId[], ValueId[]) Plan((Modality?, uint, int, int) key, Func<(GraphBuilder, ValueId[], ValueId[])> record)
    {
        if (_plans.TryGetValue(key, out var cached)) return cached;
        var (g, inputs, outputs) = record();
        var plan = ExecutionPlan.Build(ctx, g);
        _plans[key] = (plan, inputs, outputs);
        return (plan, inputs, outputs);
    }

    public void Dispose()
    {
        foreach (var p in _plans.Values) p.Plan.Dispose();
        _plans.Clear();
    }
}
