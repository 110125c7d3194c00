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
}

/// <summary>A tower's results for one request: the embedding, and token states where the fusion reads them.</summary>
internal sealed record TowerOutput(float[] Embedding, float[]? Tokens, Shape? TokenShape, int TokenCount);

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

    private bool FusionReadsTokens(Modality m) => model.Fusion is { ReadsTokens: true } f && f.Inputs.Contains(m);

    public TowerOutput RunTower(Modality m, TowerInput input, Profile? profile)
    {
        var tower = model.Towers[m];
        int length = input.Ids is { } ids0 ? Math.Min(((ClipTextTower)tower).ContextLength, (ids0.Length + TextBucket - 1) / TextBucket * TextBucket) : 0;
        bool tokens = FusionReadsTokens(m);
        var (plan, inputs, outputs) = Plan((m, 0, 1, length), () =>
        {
            var g = new GraphBuilder();
            var r = tower.Record(g, 1, length, tokens);
            g.Output(r.Embedding);
            if (r.Tokens is { } t) g.Output(t);
            return (g, r.Inputs, r.Tokens is { } tt ? [r.Embedding, tt] : [r.Embedding]);
        });
        switch (tower)
        {
            case ClipTextTower text:
            {
                var ids = new int[length];
                input.Ids!.CopyTo(ids, 0);
                plan.Upload<int>(inputs[0], ids);
                plan.Upload<int>(inputs[1], [text.PoolIndex(input.Ids)]);
                break;
            }
            case WhisperEncoderTower audio:
            {
                // One zero column each side of every mel row: conv1's padding, read in place.
                int frames = 2 * audio.Positions;
                var mel = new float[audio.Mels * (frames + 2)];
                for (int c = 0; c < audio.Mels; c++) input.LogMel.AsSpan(c * frames, frames).CopyTo(mel.AsSpan(c * (frames + 2) + 1));
                plan.Upload<float>(inputs[0], mel);
                plan.Upload<int>(inputs[1], [input.ValidPositions]);
                break;
            }
            case VideoTubeletTower tubelet:
                plan.Upload<float>(inputs[0], FramesToChannels(input.Pixels!, tubelet.Frames, tubelet.Channels));
                break;
            default:
                plan.Upload<float>(inputs[0], input.Pixels);
                break;
        }
        plan.Run(profile);
        ctx.Synchronize();
        var emb = new float[tower.ProjectionDim];
        plan.Download(outputs[0], emb);
        if (outputs.Length == 1) return new TowerOutput(emb, null, null, 0);
        var shape = plan.Views[outputs[1]].Shape;
        var states = new float[shape.Numel];
        plan.Download(outputs[1], states);
        int count = input.Ids?.Length ?? (int)shape[1];
        return new TowerOutput(emb, states, shape, count);
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

    public FusionOutput? RunFusion(IReadOnlyDictionary<Modality, TowerOutput> outputs, Profile? profile)
    {
        if (model.Fusion is not { } fusion) return null;
        uint mask = 0;
        for (int i = 0; i < fusion.Inputs.Count; i++) if (outputs.ContainsKey(fusion.Inputs[i])) mask |= 1u << i;
        if (mask == 0) return null;
        var shapes = outputs.Where(o => o.Value.TokenShape is not null).ToDictionary(o => o.Key, o => o.Value.TokenShape!.Value);
        int length = shapes.TryGetValue(Modality.Text, out var ts) ? (int)ts[1] : 0;
        var (plan, inputs, results) = Plan((null, mask, 1, length), () =>
        {
            var g = new GraphBuilder();
            var r = fusion.Record(g, mask, 1, shapes);
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
        if (fusion.ReadsTokens)
        {
            int k = 0;
            foreach (var m in fusion.Inputs.Where(outputs.ContainsKey))
            {
                plan.Upload<float>(inputs[k++], outputs[m].Tokens);
                if (m == Modality.Text) plan.Upload<int>(inputs[k++], [outputs[m].TokenCount]);
            }
        }
        else
        {
            int e = fusion.Width;
            var z = new float[fusion.Inputs.Count * e];
            for (int i = 0; i < fusion.Inputs.Count; i++)
                if (outputs.TryGetValue(fusion.Inputs[i], out var o)) o.Embedding.CopyTo(z, i * e);
            plan.Upload<float>(inputs[0], z);
        }
        plan.Run(profile);
        ctx.Synchronize();
        var fused = new float[fusion.Width];
        var gates = new float[fusion.GateWidth];
        plan.Download(results[0], fused);
        plan.Download(results[1], gates);
        if (results.Length == 2) return new FusionOutput(fused, gates, null, null);
        var logitsOut = new float[model.Labels.Length];
        var probsOut = new float[model.Labels.Length];
        plan.Download(results[2], logitsOut);
        plan.Download(results[3], probsOut);
        return new FusionOutput(fused, gates, logitsOut, probsOut);
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
