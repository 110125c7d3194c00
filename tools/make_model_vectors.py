#!/usr/bin/python3
"""Random-weight test model folders and their expected outputs, from the PyTorch mirror (tools/omni_torch.py).

Run: /usr/bin/python3 tools/make_model_vectors.py   (seeded; rebuilds every file byte-identically)
Writes tests/OmniKernels.Tests/models/{tiny-omni, tiny-omni-tubelet, tiny-clip-hf}/: config.json, model.safetensors
(F32, written with tools/safetensors_np.py), the tokenizer files, and vectors/ (inputs, cases.json, expected/<case>/*.npy
in float64 computed by the float64 model from the stored float32 weights). The case-list format is in tools/README.md.
"""
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_bpe  # noqa: E402
import omni_torch  # noqa: E402
import safetensors_np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "models")
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
SR = 16000
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "an", "el", "or", "us", "in", "ba", "de", "fu", "go",
             "hi", "ja", "pe", "qu", "st", "th", "wa", "xe", "yo", "ze", "ch", "sh", "er"]

VISION = {"type": "clip_vision", "prefix": "", "hidden_size": 40, "intermediate_size": 72, "num_hidden_layers": 2,
          "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "num_channels": 3, "hidden_act": "quick_gelu",
          "layer_norm_eps": 1e-5, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}
TEXT = {"type": "clip_text", "prefix": "", "vocab_size": 300, "max_position_embeddings": 16, "hidden_size": 40,
        "intermediate_size": 72, "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 3, "pad_token_id": 0,
        "tokenizer": {"type": "sentencepiece", "file": "tokenizer.model"}}
AUDIO = {"type": "whisper_encoder", "prefix": "", "num_mel_bins": 80, "max_source_positions": 50, "d_model": 40,
         "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 72, "activation_function": "gelu",
         "layer_norm_eps": 1e-5, "sampling_rate": SR}
MODALITIES = ["image", "text", "audio", "video"]

TINY_OMNI = {"model_type": "omni", "projection_dim": 24, "modalities": MODALITIES,
             "towers": {"image": VISION, "text": TEXT, "audio": AUDIO,
                        "video": {"type": "video_frames", "image_tower": "image", "num_frames": 4}},
             "fusion": {"type": "gate"}, "classifier": {"labels": ["cat", "dog", "car", "speech", "music"]},
             "logit_scale": True}
TINY_TUBELET = {
    "model_type": "omni", "projection_dim": 24, "modalities": MODALITIES,
    "towers": {"image": {**VISION, "hidden_act": "gelu"},
               "text": {**TEXT, "hidden_size": 36, "intermediate_size": 60, "hidden_act": "gelu"},
               "audio": AUDIO,
               "video": {"type": "video_tubelet", "prefix": "", "num_frames": 4, "tubelet_size": 2, "image_size": 32,
                         "patch_size": 8, "num_channels": 3, "hidden_size": 44, "intermediate_size": 80,
                         "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
                         "image_mean": CLIP_MEAN, "image_std": CLIP_STD}},
    "fusion": {"type": "adaptive_cross_attention", "vision": "image", "text": "text", "fusion_dim": 48, "num_heads": 4},
    "classifier": {"labels": ["indoor", "outdoor", "abstract"]}}

# A Hugging Face CLIPModel config as save_pretrained writes it (legacy eos_token_id 2 -> argmax pooling).
HF_VISION = {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 48, "image_size": 30,
             "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 88, "layer_norm_eps": 1e-05,
             "model_type": "clip_vision_model", "num_attention_heads": 4, "num_channels": 3, "num_hidden_layers": 2,
             "patch_size": 6, "projection_dim": 20}
HF_TEXT = {"attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
           "hidden_size": 40, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 72,
           "layer_norm_eps": 1e-05, "max_position_embeddings": 16, "model_type": "clip_text_model",
           "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 1, "projection_dim": 20, "vocab_size": None}
HF_CONFIG = {"architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592,
             "model_type": "clip", "projection_dim": 20, "text_config": HF_TEXT, "torch_dtype": "float32",
             "transformers_version": "4.46.3", "vision_config": HF_VISION}
HF_PREPROCESSOR = {"crop_size": {"height": 30, "width": 30}, "do_center_crop": True, "do_convert_rgb": True,
                   "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
                   "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "resample": 3,
                   "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 30}}

TEXTS = {"short": "a red cat", "medium": "the quick dog runs past the old car",
         "long": "kalo mine ruso tovi anel orus inba defu gohi japa quth waxe yoze chsh erka lomi", "one": "music"}
# audio: (samples, parts [(hz, amplitude)]); 25000 > 16000 = 2·50·160, so it is trimmed
AUDIO_CLIPS = {"a0": (5600, [(440, 0.3), (1250, 0.1)]), "a1": (11111, [(220, 0.25), (3100, 0.05)]),
               "a2": (16000, [(700, 0.2), (2600, 0.15)]), "a3": (25000, [(330, 0.3), (5100, 0.08)])}


def init_weights(model, seed):
    """Every tensor from one seeded generator in name order (fan-in scaled normals; norms near 1; biases small)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in sorted(model.state_dict().items()):
            shape = tuple(p.shape)
            if name.endswith("norm.weight") or "layer_norm" in name and name.endswith(".weight"):
                a = 1.0 + 0.1 * rng.standard_normal(shape)
            elif name == "classifier.weight":  # sharp enough that the probabilities differ clearly
                a = 4.0 * rng.standard_normal(shape) / np.sqrt(shape[1])
            elif name == "logit_scale":
                a = np.array(2.6592)
            elif p.dim() >= 2 and "embed" not in name:
                a = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
            elif "embed" in name:
                a = 0.5 * rng.standard_normal(shape)
            else:
                a = 0.1 * rng.standard_normal(shape)
            p.copy_(torch.from_numpy(a.astype(np.float32)))


def train_sentencepiece(folder, tmp):
    rng = np.random.default_rng(7)
    words = ["".join(rng.choice(SYLLABLES, size=rng.integers(1, 4))) for _ in range(400)]
    words += [w for t in TEXTS.values() for w in t.split()]
    lines = [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(3000)]
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(lines + list(TEXTS.values())) + "\n")
    # relative paths: the model file records its trainer's arguments, and a temp path would differ per run
    subprocess.run(["spm_train", "--input=corpus.txt", "--model_prefix=spm", "--model_type=bpe",
                    "--vocab_size=300", "--bos_id=1", "--eos_id=3", "--pad_id=0", "--unk_id=2",
                    "--character_coverage=1.0", "--num_threads=1", "--normalization_rule_name=identity",
                    "--minloglevel=2"], check=True, capture_output=True, cwd=tmp)
    shutil.copy(f"{tmp}/spm.model", os.path.join(folder, "tokenizer.model"))
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))


def spm_ids(sp, text, ctx):
    ids = sp.encode(text)
    return [1] + ids[: ctx - 2] + [3]


def make_image(rng, size, mean, std):
    """A smooth pattern plus noise in [0, 1], normalized: float32 [3, H, W]."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + rng.uniform(0, 6)), np.cos(5 * y + rng.uniform(0, 6)), np.sin(4 * (x + y))])
    img = np.clip(0.5 + 0.35 * base + 0.1 * rng.standard_normal((3, size, size)), 0, 1)
    return ((img - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]).astype(np.float32)


def write_png(rng, path, size, mean, std):
    """A PNG the size of the tower (CLIP's resize and center crop are then identities) and its preprocessed
    tensor: (u8 / 255 - mean) / std in float64, stored float32."""
    u8 = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(u8, "RGB").save(path, optimize=False)
    x = u8.transpose(2, 0, 1).astype(np.float64) / 255.0
    return ((x - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]).astype(np.float32)


def write_inputs(vec, rng, image_size, mean, std, texts, audio, clips, video_frames):
    """inputs/: image_*.npy (+ a PNG), text in texts.json, audio WAV + float waveform + log-mel, video_*.npy."""
    inp = os.path.join(vec, "inputs")
    os.makedirs(inp)
    images = {f"i{k}": make_image(rng, image_size, mean, std) for k in range(2)}
    entries = {}
    for k, a in images.items():
        np.save(f"{inp}/image_{k}.npy", a)
        entries[k] = {"pixels": f"inputs/image_{k}.npy"}
    images["png"] = write_png(rng, f"{inp}/image_png.png", image_size, mean, std)
    np.save(f"{inp}/image_png.npy", images["png"])
    entries["png"] = {"png": "inputs/image_png.png", "pixels": "inputs/image_png.npy"}
    with open(f"{vec}/texts.json", "w") as f:
        json.dump(texts, f, indent=1)
    waves = {}
    if audio:
        P, filters = audio["max_source_positions"], omni_torch.whisper_mel_filters()
        for k in clips:
            n, parts = AUDIO_CLIPS[k]
            t = np.arange(n) / SR
            x = sum(a * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6)) for hz, a in parts)
            x = x * np.minimum(1, np.minimum(t, t[-1] - t) / 0.02) + 0.01 * rng.standard_normal(n)
            pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
            soundfile.write(f"{inp}/audio_{k}.wav", pcm, SR, subtype="PCM_16")
            wave = (pcm / 32768.0).astype(np.float32)  # what a PCM16 WAV decodes to
            np.save(f"{inp}/audio_{k}.npy", wave)
            mel = omni_torch.whisper_log_mel(omni_torch.fit_waveform(torch.from_numpy(wave.astype(np.float64)), P), filters)
            np.save(f"{inp}/audio_{k}_logmel.npy", mel.numpy().astype(np.float32))  # the model ran on the float64 one
            waves[k] = (mel, n)
            entries[k] = {"wav": f"inputs/audio_{k}.wav", "waveform": f"inputs/audio_{k}.npy",
                          "logmel": f"inputs/audio_{k}_logmel.npy", "samples": n}
    videos = {}
    for k in range(2 if video_frames else 0):
        v = np.stack([make_image(rng, image_size, mean, std) for _ in range(video_frames)])
        np.save(f"{inp}/video_v{k}.npy", v)
        videos[f"v{k}"] = v
        entries[f"v{k}"] = {"frames": f"inputs/video_v{k}.npy"}
    return images, waves, videos, entries


def as_array(t):
    return np.ascontiguousarray(t.detach().numpy().astype(np.float64))


def run_cases(model, vec, cases, images, texts, waves, videos, entries):
    """cases: [(name, {modality: input key})]; writes expected/<name>/*.npy and cases.json."""
    listed = []
    for name, keys in cases:
        feed = {}
        for m, k in keys.items():
            if m == "image":
                feed[m] = torch.from_numpy(images[k].astype(np.float64))
            elif m == "text":
                feed[m] = torch.tensor(texts[k]["ids"], dtype=torch.int64)
            elif m == "audio":
                feed[m] = waves[k]
            else:
                feed[m] = torch.from_numpy(videos[k].astype(np.float64))
        with torch.no_grad():
            out = model(feed)
        folder = os.path.join(vec, "expected", name)
        os.makedirs(folder)
        files = {}

        def put(key, value):
            np.save(os.path.join(folder, f"{key}.npy"), as_array(value))
            files[key] = f"expected/{name}/{key}.npy"

        for m, e in out["embeddings"].items():
            put(f"embedding_{m}", e)
        for key in ("gates", "fused", "logits", "probabilities"):
            if key in out:
                put(key, out[key])
        pairs = list(out["similarities"])
        if pairs:
            put("similarities", torch.stack([out["similarities"][p] for p in pairs]))
            if "similarity_logits" in out:
                put("similarity_logits", torch.stack([out["similarity_logits"][p] for p in pairs]))
        order = [m for m in model.modalities if m in keys]
        listed.append({"name": name, "inputs": {m: {"key": keys[m], **({"text": texts[keys[m]]["text"],
                                                                         "ids": texts[keys[m]]["ids"]}
                                                                        if m == "text" else entries[keys[m]])}
                                                for m in order},
                       "towers_run": order, "similarity_pairs": pairs, "outputs": files})
    return listed


def save_folder(name, config, model, tensors_extra=None, config_json=None):
    folder = os.path.join(ROOT, name)
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    tensors.update(tensors_extra or {})
    safetensors_np.save(os.path.join(folder, "model.safetensors"), tensors, metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config_json or config, f, indent=2)
        f.write("\n")
    # The load-back check: every tensor read back equals the state_dict it came from.
    back, dtypes, _ = safetensors_np.load(os.path.join(folder, "model.safetensors"))
    want = model.state_dict()
    assert set(back) == set(want) | set(tensors_extra or {}), f"{name}: tensor names differ"
    for k, v in want.items():
        assert dtypes[k] == "F32" and np.array_equal(back[k], v.numpy()), f"{name}: {k} differs after reload"


def write_cases_json(vec, model_name, config, listed):
    doc = {"model": model_name, "modalities": config["modalities"], "dtype": "float64",
           "labels": config.get("classifier", {}).get("labels", []), "cases": listed}
    with open(os.path.join(vec, "cases.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def fresh(name):
    folder = os.path.join(ROOT, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "vectors"))
    return folder, os.path.join(folder, "vectors")


def build_omni(name, config, seed, sp_tmp, case_list, clips):
    folder, vec = fresh(name)
    sp = train_sentencepiece(folder, sp_tmp)
    ctx = config["towers"]["text"]["max_position_embeddings"]
    texts = {k: {"text": t, "ids": spm_ids(sp, t, ctx)} for k, t in TEXTS.items()}
    assert len(sp.encode(TEXTS["long"])) > ctx - 2, "the long text must be truncated"
    torch.manual_seed(seed)
    model = omni_torch.OmniModel(config)
    init_weights(model, seed)
    save_folder(name, config, model)
    model.double()
    rng = np.random.default_rng(seed + 1)
    v = config["towers"]["video"]
    images, waves, videos, entries = write_inputs(vec, rng, VISION["image_size"], CLIP_MEAN, CLIP_STD, texts, AUDIO,
                                                  clips, v["num_frames"])
    listed = run_cases(model, vec, case_list, images, texts, waves, videos, entries)
    write_cases_json(vec, name, config, listed)
    return model, len(listed)


def omni_cases():
    """Every non-empty subset of the four modalities, then length and input-kind variants."""
    default = {"image": "i0", "text": "medium", "audio": "a1", "video": "v0"}
    cases = []
    for r in range(1, 5):
        for subset in itertools.combinations(MODALITIES, r):
            cases.append(("_".join(subset), {m: default[m] for m in subset}))
    cases += [("text_short", {"text": "short"}), ("text_long_truncated", {"text": "long"}), ("text_one", {"text": "one"}),
              ("audio_short", {"audio": "a0"}), ("audio_exact", {"audio": "a2"}), ("audio_trimmed", {"audio": "a3"}),
              ("image_png", {"image": "png"}), ("image_i1_text_short_audio_a3", {"image": "i1", "text": "short", "audio": "a3"}),
              ("video_v1_text_long", {"video": "v1", "text": "long"})]
    return cases


def tubelet_cases():
    return [("image", {"image": "i0"}), ("text", {"text": "medium"}), ("image_text", {"image": "i0", "text": "medium"}),
            ("image_text_short", {"image": "i1", "text": "short"}), ("image_text_long", {"image": "png", "text": "long"}),
            ("video", {"video": "v0"}), ("audio", {"audio": "a0"}), ("audio_video", {"audio": "a3", "video": "v1"}),
            ("image_text_audio_video", {"image": "i0", "text": "medium", "audio": "a0", "video": "v0"}),
            ("text_video", {"text": "one", "video": "v1"}), ("image_audio", {"image": "i1", "audio": "a3"})]


def build_hf_clip(seed):
    name = "tiny-clip-hf"
    folder, vec = fresh(name)
    corpus = ["a photo of a cat", "a photo of a dog", "the quick brown fox jumps over the lazy dog",
              "two cats sitting on a red sofa", "a diagram of the solar system", "music and speech, 3 voices!"] * 3
    vocab, merges = clip_bpe.train(corpus, 100)
    clip_bpe.write(folder, vocab, merges)
    tok = clip_bpe.ClipTokenizer.load(folder)
    hf = json.loads(json.dumps(HF_CONFIG))
    hf["text_config"]["vocab_size"] = len(vocab)
    config = omni_torch.config_from_hf_clip(hf)
    ctx = HF_TEXT["max_position_embeddings"]
    texts = {"cat": "a photo of a cat", "dog": "A  photo of a DOG.", "fox": "the quick brown fox jumps over the lazy dog "
             "while two cats sit on a red sofa", "unseen": "zebra & quartz, 42"}
    texts = {k: {"text": t, "ids": tok.encode(t, ctx)} for k, t in texts.items()}
    assert all(max(t["ids"]) == t["ids"][-1] == len(vocab) - 1 for t in texts.values())
    torch.manual_seed(seed)
    model = omni_torch.OmniModel(config)
    init_weights(model, seed)
    pos = {"text_model.embeddings.position_ids": np.arange(ctx, dtype=np.int64)[None],
           "vision_model.embeddings.position_ids": np.arange(model.vision_model.patches + 1, dtype=np.int64)[None]}
    save_folder(name, config, model, pos, hf)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump(HF_PREPROCESSOR, f, indent=2)
        f.write("\n")
    model.double()
    rng = np.random.default_rng(seed + 1)
    images, waves, videos, entries = write_inputs(vec, rng, HF_VISION["image_size"], CLIP_MEAN, CLIP_STD, texts, None, [], 0)
    cases = [("image", {"image": "i0"}), ("image_png", {"image": "png"}), ("text_cat", {"text": "cat"}),
             ("text_unseen", {"text": "unseen"}), ("image_text_cat", {"image": "i0", "text": "cat"}),
             ("image_text_dog", {"image": "i1", "text": "dog"}), ("image_text_fox_truncated", {"image": "png", "text": "fox"})]
    listed = run_cases(model, vec, cases, images, texts, waves, videos, entries)
    write_cases_json(vec, name, config, listed)
    return model, len(listed)


# ---- checks of the mirror against independent implementations -----------------------------------------------

def _rel(a, b):
    return float((a - b).norm() / b.norm())


def numpy_log_mel(x, filters):
    """Whisper's log-mel written out in NumPy: reflect-pad 200, 400-sample frames every 160 under a periodic
    Hann window, |rfft|^2 of all but the last frame, mel, log10 clamp, max - 8, (x + 4) / 4."""
    x = np.pad(x, 200, mode="reflect")
    frames = np.stack([x[i:i + 400] for i in range(0, len(x) - 399, 160)])[:-1]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    log_spec = np.log10(np.maximum(filters.T @ power.T, 1e-10))
    return (np.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0


def check_layers():
    """ClipLayer / WhisperLayer against torch's nn.TransformerEncoderLayer (norm_first) with the same weights,
    the patch and tubelet convolutions against explicit reshapes, the log-mel against make_audio_vectors."""
    torch.manual_seed(0)
    for act, causal, k_bias in (("quick_gelu", False, True), ("gelu", True, True), ("gelu", False, False)):
        c = {"hidden_size": 40, "num_attention_heads": 4, "intermediate_size": 72, "hidden_act": act, "layer_norm_eps": 1e-5}
        if k_bias:
            ours = omni_torch.ClipLayer(40, 4, 72, act, 1e-5).double()
            ln1, ln2, mlp = ours.layer_norm1, ours.layer_norm2, ours.mlp
            fc1, fc2 = mlp.fc1, mlp.fc2
        else:
            ours = omni_torch.WhisperLayer({"d_model": 40, "encoder_attention_heads": 4, "encoder_ffn_dim": 72,
                                            "activation_function": act, "layer_norm_eps": 1e-5}).double()
            ln1, ln2, fc1, fc2 = ours.self_attn_layer_norm, ours.final_layer_norm, ours.fc1, ours.fc2
        with torch.no_grad():
            for p in ours.parameters():
                p.normal_(0, 0.3)
        a = ours.self_attn
        ref = torch.nn.TransformerEncoderLayer(40, 4, 72, dropout=0.0, activation=omni_torch.activation(act),
                                               batch_first=True, norm_first=True, layer_norm_eps=c["layer_norm_eps"]).double()
        with torch.no_grad():
            k_b = a.k_proj.bias if k_bias else torch.zeros(40, dtype=torch.float64)
            ref.self_attn.in_proj_weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
            ref.self_attn.in_proj_bias.copy_(torch.cat([a.q_proj.bias, k_b, a.v_proj.bias]))
            ref.self_attn.out_proj.weight.copy_(a.out_proj.weight)
            ref.self_attn.out_proj.bias.copy_(a.out_proj.bias)
            for dst, src in ((ref.norm1, ln1), (ref.norm2, ln2), (ref.linear1, fc1), (ref.linear2, fc2)):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)
            x = torch.randn(1, 11, 40, dtype=torch.float64)
            mask = torch.ones(11, 11, dtype=torch.bool).triu(1) if causal else None
            y = ours(x, causal) if k_bias else ours(x)
            err = _rel(y, ref(x, src_mask=mask))
        assert err < 1e-13, f"layer ({act}, causal {causal}, k bias {k_bias}) differs from nn.TransformerEncoderLayer: {err}"
    with torch.no_grad():
        conv = torch.nn.Conv2d(3, 40, 8, stride=8, bias=False).double()
        px = torch.randn(1, 3, 32, 32, dtype=torch.float64)
        patches = px.reshape(3, 4, 8, 4, 8).permute(1, 3, 0, 2, 4).reshape(16, 192)
        assert _rel(conv(px).flatten(2).transpose(1, 2)[0], patches @ conv.weight.reshape(40, 192).T) < 1e-13
        conv3 = torch.nn.Conv3d(3, 44, (2, 8, 8), stride=(2, 8, 8)).double()
        fr = torch.randn(4, 3, 32, 32, dtype=torch.float64)  # [T, C, H, W] -> tokens (time, row, column)
        tub = fr.reshape(2, 2, 3, 4, 8, 4, 8).permute(0, 3, 5, 2, 1, 4, 6).reshape(32, 384)
        got = conv3(fr.permute(1, 0, 2, 3)[None]).flatten(2).transpose(1, 2)[0]
        assert _rel(got, tub @ conv3.weight.reshape(44, 384).T + conv3.bias) < 1e-13
    import make_audio_vectors as mav
    fb = omni_torch.whisper_mel_filters()
    assert np.abs(fb.numpy() - mav.librosa_mel_numpy().T).max() / np.abs(fb.numpy()).max() < 1e-12
    wave = omni_torch.fit_waveform(torch.randn(9000, dtype=torch.float64) * 0.1, 50)
    assert wave.shape == (16000,) and float(wave[9000:].abs().max()) == 0.0
    mel = omni_torch.whisper_log_mel(wave, fb)
    assert mel.shape == (80, 100) and _rel(mel, torch.from_numpy(numpy_log_mel(wave.numpy(), fb.numpy()))) < 1e-12
    print("checks: CLIP/Whisper layers vs nn.TransformerEncoderLayer, patch/tubelet convs vs reshapes, "
          "Whisper filters vs librosa formula, log-mel: all pass")


def check_clip_tokenizer(folder):
    tok = clip_bpe.ClipTokenizer.load(folder)
    inverse = {i: t for t, i in tok.vocab.items()}
    unbyte = {c: b for b, c in clip_bpe.bytes_to_unicode().items()}
    for text in ("a photo of a cat", "zebra & quartz, 42", "the lazy dog!"):
        ids = tok.encode(text, 77)
        s = "".join(inverse[i] for i in ids[1:-1]).replace("</w>", " ")
        back = bytes(unbyte[c] for c in s.replace(" ", "")).decode()
        assert back == clip_bpe.clean(text).replace(" ", ""), (text, back)


def main():
    check_layers()
    os.makedirs(ROOT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        _, n1 = build_omni("tiny-omni", TINY_OMNI, 1701, tmp, omni_cases(), list(AUDIO_CLIPS))
        _, n2 = build_omni("tiny-omni-tubelet", TINY_TUBELET, 2718, tmp, tubelet_cases(), ["a0", "a3"])
    _, n3 = build_hf_clip(3141)
    check_clip_tokenizer(os.path.join(ROOT, "tiny-clip-hf"))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote tiny-omni ({n1} cases), tiny-omni-tubelet ({n2}), tiny-clip-hf ({n3}); {total / 1e6:.2f} MB under {ROOT}")


if __name__ == "__main__":
    main()
