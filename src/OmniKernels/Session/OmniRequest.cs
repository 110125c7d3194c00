using OmniKernels.Images;
using OmniKernels.Model;

namespace OmniKernels.Session;

/// <summary>An image: decoded pixels (preprocessed on the device as the model's tower asks) or already-preprocessed pixels [C, H, W].</summary>
public sealed record ImageInput
{
    /// <summary>Decoded pixels, resized, cropped and normalized by the session.</summary>
    public DecodedImage? Decoded { get; init; }

    /// <summary>Preprocessed pixels [C, H, W] in C order, at the tower's image size.</summary>
    public float[]? Pixels { get; init; }
}

/// <summary>Audio: a mono waveform at a sample rate (resampled and turned into the tower's log-mel), or a log-mel [mels, frames] already made.</summary>
public sealed record AudioInput
{
    /// <summary>Mono samples.</summary>
    public float[]? Samples { get; init; }

    /// <summary>Rate of <see cref="Samples"/>.</summary>
    public int SampleRate { get; init; } = 16000;

    /// <summary>Whisper log-mel [mels, 2·P] in C order, from a waveform of <see cref="LogMelSamples"/> real samples.</summary>
    public float[]? LogMel { get; init; }

    /// <summary>Real samples behind <see cref="LogMel"/> (its pooling covers them only); null: all frames are real.</summary>
    public int? LogMelSamples { get; init; }
}

/// <summary>A clip: preprocessed frames [T, C, H, W] in C order, T = the tower's frame count, or decoded frames the session samples and preprocesses.</summary>
public sealed record VideoInput
{
    /// <summary>Preprocessed frames [T, C, H, W].</summary>
    public float[]? Frames { get; init; }

    /// <summary>Decoded frames, sampled uniformly to the tower's frame count.</summary>
    public IReadOnlyList<DecodedImage>? Decoded { get; init; }
}

/// <summary>One request: any non-empty subset of image, text, audio and video. Immutable; may be reused.</summary>
public sealed record OmniRequest
{
    /// <summary>The image, if any.</summary>
    public ImageInput? Image { get; init; }

    /// <summary>Text, tokenized by the model's tokenizer.</summary>
    public string? Text { get; init; }

    /// <summary>Pre-tokenized text (start and end tokens included); instead of <see cref="Text"/>.</summary>
    public int[]? TextIds { get; init; }

    /// <summary>The audio, if any.</summary>
    public AudioInput? Audio { get; init; }

    /// <summary>The clip, if any.</summary>
    public VideoInput? Video { get; init; }

    /// <summary>Time every node (synchronizing after each) and return the per-node profile.</summary>
    public bool Profile { get; init; }

    /// <summary>The modalities the request carries, in the fixed order image, text, audio, video.</summary>
    public IReadOnlyList<Modality> Modalities
    {
        get
        {
            var list = new List<Modality>(4);
            if (Image is not null) list.Add(Modality.Image);
            if (Text is not null || TextIds is not null) list.Add(Modality.Text);
            if (Audio is not null) list.Add(Modality.Audio);
            if (Video is not null) list.Add(Modality.Video);
            return list;
        }
    }
}

/// <summary>A class and its probability.</summary>
public sealed record ClassScore(string Label, float Probability);

/// <summary>What a request computed. Owns only host arrays: nothing to dispose.</summary>
public sealed record OmniResult
{
    /// <summary>The model's name (its folder).</summary>
    public required string Model { get; init; }

    /// <summary>The device that ran it.</summary>
    public required string Device { get; init; }

    /// <summary>The modalities whose towers ran, in the model's order.</summary>
    public required IReadOnlyList<Modality> TowersRun { get; init; }

    /// <summary>Projected, L2-normalized embedding per modality present.</summary>
    public required IReadOnlyDictionary<Modality, float[]> Embeddings { get; init; }

    /// <summary>The fused vector, or null when the fusion had none of its inputs.</summary>
    public float[]? Fused { get; init; }

    /// <summary>Gate values: [M·E] per element (gate fusion, absent blocks 0) or one per modality (adaptive fusion).</summary>
    public float[]? Gates { get; init; }

    /// <summary>Class logits, when the model has a classifier and a fused vector exists.</summary>
    public float[]? Logits { get; init; }

    /// <summary>The fusion's weight of each present modality: the mean of its gate block (null without a fusion).</summary>
    public IReadOnlyDictionary<Modality, float>? GateWeights { get; init; }

    /// <summary>Classes by probability, highest first.</summary>
    public IReadOnlyList<ClassScore> Classes { get; init; } = [];

    /// <summary>Cosine similarity of each present pair ("image-text"), in the model's modality order.</summary>
    public required IReadOnlyDictionary<string, float> Similarities { get; init; }

    /// <summary>exp(logit_scale)·cosine per pair, when the model has a logit scale.</summary>
    public IReadOnlyDictionary<string, float>? SimilarityLogits { get; init; }

    /// <summary>Milliseconds per stage (preprocess, each tower, fusion, total).</summary>
    public required IReadOnlyDictionary<string, double> TimingsMs { get; init; }

    /// <summary>Per-node launches and times, when the request asked for a profile.</summary>
    public IReadOnlyList<Graph.NodeProfile>? Profile { get; init; }
}
