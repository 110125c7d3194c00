"""PyTorch mirror of the OmniKernels model folder (docs: /work/wt/MODEL_FORMAT.md, tools/MODEL_FORMAT_NOTES.md).

Every module keeps exactly the tensor names of the format, so `OmniModel(config).state_dict()` keys are the
safetensors names (towers with prefix "" only). The forward runs one request (no batch axis) over any
non-empty subset of the config's modalities and returns every intermediate the C# session reports.

Formulas are ported from Hugging Face transformers (read, not copied):
  CLIP:    https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/src/transformers/models/clip/modeling_clip.py
  Whisper: https://github.com/huggingface/transformers/blob/5c48f71a682fa7bbcbde1be5d2a2ac16cc654210/src/transformers/models/whisper/modeling_whisper.py
  Activations (quick_gelu, exact-erf gelu): https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/src/transformers/activations.py
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

CLIP_PY = ("https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/"
           "src/transformers/models/clip/modeling_clip.py")
WHISPER_PY = ("https://github.com/huggingface/transformers/blob/5c48f71a682fa7bbcbde1be5d2a2ac16cc654210/"
              "src/transformers/models/whisper/modeling_whisper.py")


def activation(name):
    # activations.py: QuickGELUActivation = x * sigmoid(1.702 x); "gelu" = GELUActivation = exact erf form.
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu
    raise ValueError(f"unknown activation {name!r}")


class SelfAttention(nn.Module):
    """CLIPAttention / WhisperAttention (self-attention only): q is scaled by head_dim^-0.5 before q·k
    (CLIP_PY CLIPAttention.forward, WHISPER_PY WhisperAttention: `self.scaling = self.head_dim**-0.5`).
    Whisper's k_proj has no bias (WHISPER_PY WhisperAttention.__init__: k_proj bias=False)."""

    def __init__(self, width, heads, k_bias=True):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, width // heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width, bias=k_bias)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, causal=False):
        b, s, w = x.shape
        split = lambda t: t.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        q = split(self.q_proj(x) * self.head_dim ** -0.5)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2)
        if causal:  # CLIP text: _create_4d_causal_attention_mask, -inf above the diagonal
            scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        return self.out_proj(y.transpose(1, 2).reshape(b, s, w))


class ClipMlp(nn.Module):
    def __init__(self, width, inner, act):
        super().__init__()
        self.act = activation(act)
        self.fc1, self.fc2 = nn.Linear(width, inner), nn.Linear(inner, width)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ClipLayer(nn.Module):
    """CLIPEncoderLayer (pre-LN): x += attn(ln1(x)); x += mlp(ln2(x))."""

    def __init__(self, width, heads, inner, act, eps):
        super().__init__()
        self.self_attn = SelfAttention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = ClipMlp(width, inner, act)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x, causal=False):
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList(
            ClipLayer(c["hidden_size"], c["num_attention_heads"], c["intermediate_size"], c["hidden_act"],
                      c["layer_norm_eps"]) for _ in range(c["num_hidden_layers"]))

    def forward(self, x, causal=False):
        for layer in self.layers:
            x = layer(x, causal)
        return x


class _Holder(nn.Module):
    """A bare container, so submodules get the checkpoint's dotted names (`embeddings.`, `model.encoder.`)."""


class ClipVisionTransformer(nn.Module):
    """CLIPVisionEmbeddings + CLIPVisionTransformer: x = cat(cls, patches) + pos, pre_layrnorm, encoder;
    pooled = post_layernorm(x[:, 0])."""

    def __init__(self, c):
        super().__init__()
        w, p = c["hidden_size"], c["patch_size"]
        self.patches = (c["image_size"] // p) ** 2
        self.embeddings = _Holder()
        self.embeddings.class_embedding = nn.Parameter(torch.empty(w))
        self.embeddings.patch_embedding = nn.Conv2d(c["num_channels"], w, p, stride=p, bias=False)
        self.embeddings.position_embedding = nn.Embedding(self.patches + 1, w)
        self.pre_layrnorm = nn.LayerNorm(w, eps=c["layer_norm_eps"])
        self.encoder = ClipEncoder(c)
        self.post_layernorm = nn.LayerNorm(w, eps=c["layer_norm_eps"])

    def forward(self, pixels):
        """pixels [B, C, H, W] -> (pooled [B, W], post_layernorm over all tokens [B, N+1, W])."""
        e = self.embeddings
        patches = e.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([e.class_embedding.expand(pixels.shape[0], 1, -1), patches], dim=1)
        x = self.encoder(self.pre_layrnorm(x + e.position_embedding.weight))
        tokens = self.post_layernorm(x)
        return tokens[:, 0], tokens


class ClipTextTransformer(nn.Module):
    """CLIPTextTransformer: token + position embeddings, causal encoder, final_layer_norm, pooled at the
    end-of-text token: argmax(ids) when eos_token_id == 2 (legacy configs), else the first eos_token_id
    (CLIP_PY CLIPTextTransformer.forward)."""

    def __init__(self, c):
        super().__init__()
        w = c["hidden_size"]
        self.eos = c["eos_token_id"]
        self.embeddings = _Holder()
        self.embeddings.token_embedding = nn.Embedding(c["vocab_size"], w)
        self.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], w)
        self.encoder = ClipEncoder(c)
        self.final_layer_norm = nn.LayerNorm(w, eps=c["layer_norm_eps"])

    def forward(self, ids):
        """ids [S] (int64) -> (pooled [W], final_layer_norm over the tokens [S, W])."""
        if not 0 < len(ids) <= self.embeddings.position_embedding.num_embeddings:
            raise ValueError(f"text length {len(ids)} outside 1..{self.embeddings.position_embedding.num_embeddings}")
        e = self.embeddings
        x = e.token_embedding(ids) + e.position_embedding.weight[: len(ids)]
        tokens = self.final_layer_norm(self.encoder(x[None], causal=True))[0]
        if self.eos == 2:
            index = int(torch.argmax(ids))  # first occurrence of the highest id
        else:
            hits = (ids == self.eos).nonzero()
            if len(hits) == 0:
                raise ValueError(f"no end-of-text token {self.eos} in {ids.tolist()}")
            index = int(hits[0])
        return tokens[index], tokens


class WhisperLayer(nn.Module):
    """WhisperEncoderLayer (pre-LN): x += attn(self_attn_layer_norm(x)); x += fc2(act(fc1(final_layer_norm(x))))."""

    def __init__(self, c):
        super().__init__()
        w, eps = c["d_model"], c["layer_norm_eps"]
        self.act = activation(c["activation_function"])
        self.self_attn = SelfAttention(w, c["encoder_attention_heads"], k_bias=False)
        self.self_attn_layer_norm = nn.LayerNorm(w, eps=eps)
        self.fc1, self.fc2 = nn.Linear(w, c["encoder_ffn_dim"]), nn.Linear(c["encoder_ffn_dim"], w)
        self.final_layer_norm = nn.LayerNorm(w, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """WHISPER_PY WhisperEncoder: gelu(conv1) (k3 p1), gelu(conv2) (k3 s2 p1), + embed_positions, layers, layer_norm.
    HF builds its LayerNorms with torch's default eps 1e-5; the config's layer_norm_eps is used here (set 1e-5)."""

    def __init__(self, c):
        super().__init__()
        w, eps = c["d_model"], c["layer_norm_eps"]
        self.conv1 = nn.Conv1d(c["num_mel_bins"], w, 3, padding=1)
        self.conv2 = nn.Conv1d(w, w, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(c["max_source_positions"], w)
        self.layers = nn.ModuleList(WhisperLayer(c) for _ in range(c["encoder_layers"]))
        self.layer_norm = nn.LayerNorm(w, eps=eps)

    def forward(self, mel):
        """mel [mels, 2P] -> [P, W]."""
        if mel.shape[1] != 2 * self.embed_positions.num_embeddings:
            raise ValueError(f"log-mel has {mel.shape[1]} frames, the encoder takes {2 * self.embed_positions.num_embeddings}")
        x = F.gelu(self.conv1(mel[None]))
        x = F.gelu(self.conv2(x)).transpose(1, 2) + self.embed_positions.weight
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)[0]


class ClipVisionTower(nn.Module):
    def __init__(self, c, E):
        super().__init__()
        self.vision_model = ClipVisionTransformer(c)
        self.visual_projection = nn.Linear(c["hidden_size"], E, bias=False)

    def embed(self, pixels):
        """pixels [B, C, H, W] -> (e [B, E] unnormalized, tokens [B, N+1, W])."""
        pooled, tokens = self.vision_model(pixels)
        return self.visual_projection(pooled), tokens


class ClipTextTower(nn.Module):
    def __init__(self, c, E):
        super().__init__()
        self.text_model = ClipTextTransformer(c)
        self.text_projection = nn.Linear(c["hidden_size"], E, bias=False)

    def embed(self, ids):
        pooled, tokens = self.text_model(ids)
        return self.text_projection(pooled), tokens


class WhisperTower(nn.Module):
    def __init__(self, c, E):
        super().__init__()
        self.model = _Holder()
        self.model.encoder = WhisperEncoder(c)
        self.audio_projection = nn.Linear(c["d_model"], E, bias=False)

    def embed(self, mel, samples):
        """Masked mean over the first v = min(P, ceil(L / 320)) positions: the ones holding real audio."""
        h = self.model.encoder(mel)
        v = min(h.shape[0], math.ceil(samples / 320))
        if v < 1:
            raise ValueError("audio with no samples")
        return self.audio_projection(h[:v].mean(0)), h


class TubeletTower(nn.Module):
    """Conv3d tubelets (kernel = stride = (t, p, p), VideoMAE's patch_embeddings.projection) + position
    embedding, CLIP-named pre-LN layers, post_layernorm(mean over tokens), video_projection."""

    def __init__(self, c, E):
        super().__init__()
        w, t, p = c["hidden_size"], c["tubelet_size"], c["patch_size"]
        tokens = (c["num_frames"] // t) * (c["image_size"] // p) ** 2
        self.video_model = _Holder()
        self.video_model.embeddings = _Holder()
        self.video_model.embeddings.patch_embeddings = _Holder()
        self.video_model.embeddings.patch_embeddings.projection = nn.Conv3d(c["num_channels"], w, (t, p, p), stride=(t, p, p))
        self.video_model.embeddings.position_embedding = nn.Embedding(tokens, w)
        self.video_model.encoder = ClipEncoder(c)
        self.video_model.post_layernorm = nn.LayerNorm(w, eps=c["layer_norm_eps"])
        self.video_projection = nn.Linear(w, E, bias=False)

    def embed(self, frames):
        """frames [T, C, H, W]; tokens ordered (time, row, column) as Conv3d's output flattens."""
        vm = self.video_model
        x = vm.embeddings.patch_embeddings.projection(frames.permute(1, 0, 2, 3)[None]).flatten(2).transpose(1, 2)
        x = vm.encoder(x + vm.embeddings.position_embedding.weight)
        return self.video_projection(vm.post_layernorm(x.mean(1))[0]), None


class GateFusion(nn.Module):
    """g = sigmoid(W z + b) over z = [e_1; ...; e_M] (absent blocks 0), g_m := 0 for absent m, fused = sum g_m * e_m."""

    def __init__(self, M, E):
        super().__init__()
        self.M, self.E = M, E
        self.gate = nn.Linear(M * E, M * E)

    def forward(self, blocks):
        """blocks: list of M vectors [E] or None (absent)."""
        z = torch.cat([b if b is not None else torch.zeros(self.E, dtype=self.gate.weight.dtype) for b in blocks])
        present = torch.cat([torch.full((self.E,), float(b is not None), dtype=z.dtype) for b in blocks])
        g = torch.sigmoid(self.gate(z)) * present
        return (g * z).view(self.M, self.E).sum(0), g


class AdaptiveCrossModalFusion(nn.Module):
    """Seed article 004's AdaptiveCrossModalFusion for one request, with the gate's softmax taken over the
    modalities present: both -> softmax(gate_net(cat(mean v, mean t))); one -> weight 1 on its mean."""

    def __init__(self, vision_dim, text_dim, fusion_dim, heads):
        super().__init__()
        self.vision_proj = nn.Linear(vision_dim, fusion_dim)
        self.text_proj = nn.Linear(text_dim, fusion_dim)
        self.gate_net = nn.Sequential(nn.Linear(2 * fusion_dim, fusion_dim), nn.ReLU(), nn.Linear(fusion_dim, 2))
        self.cross_attn = nn.MultiheadAttention(fusion_dim, heads, batch_first=True)

    def forward(self, vision_tokens, text_tokens):
        """vision_tokens [N+1, Wv] or None, text_tokens [S, Wt] or None -> (fused [F], gate weights [2] (w_v, w_t))."""
        dtype = self.vision_proj.weight.dtype
        v = self.vision_proj(vision_tokens) if vision_tokens is not None else None
        t = self.text_proj(text_tokens) if text_tokens is not None else None
        if v is None or t is None:
            only = v if v is not None else t
            weights = torch.tensor([float(v is not None), float(t is not None)], dtype=dtype)
            return only.mean(0), weights
        weights = torch.softmax(self.gate_net(torch.cat([v.mean(0), t.mean(0)])), dim=-1)
        attn, _ = self.cross_attn(t[None], v[None], v[None], need_weights=False)
        return weights[0] * v.mean(0) + weights[1] * attn[0].mean(0), weights


TOWERS = {"clip_vision": ClipVisionTower, "clip_text": ClipTextTower, "whisper_encoder": WhisperTower,
          "video_tubelet": TubeletTower}


class OmniModel(nn.Module):
    """The whole omni model from its config dict; state_dict keys are the safetensors names."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.modalities = list(config["modalities"])
        E = config["projection_dim"]
        self._towers = {}
        for m in self.modalities:
            c = config["towers"][m]
            if c["type"] == "video_frames":
                continue
            if c.get("prefix", "") != "":
                raise ValueError(f"tower {m}: the Python mirror supports prefix \"\" only")
            tower = TOWERS[c["type"]](c, E)
            self._towers[m] = tower
            for name, child in tower.named_children():
                if name in self._modules:
                    raise ValueError(f"tower {m}: module name {name} is taken")
                self.add_module(name, child)
        fusion = config.get("fusion")
        self.fusion_type = fusion["type"] if fusion else None
        if self.fusion_type == "gate":
            self.fusion = GateFusion(len(self.modalities), E)
            fused_dim = E
        elif self.fusion_type == "adaptive_cross_attention":
            tv, tt = config["towers"][fusion["vision"]], config["towers"][fusion["text"]]
            self.fusion = AdaptiveCrossModalFusion(tv["hidden_size"], tt["hidden_size"], fusion["fusion_dim"],
                                                   fusion["num_heads"])
            fused_dim = fusion["fusion_dim"]
        elif self.fusion_type is not None:
            raise ValueError(f"unknown fusion {self.fusion_type!r}")
        if "classifier" in config:
            self.classifier = nn.Linear(fused_dim, len(config["classifier"]["labels"]))
        if config.get("logit_scale"):
            self.logit_scale = nn.Parameter(torch.tensor(0.0))

    def _embed(self, m, x):
        c = self.config["towers"][m]
        if c["type"] == "video_frames":
            e, _ = self._towers[c["image_tower"]].embed(x)  # the T frames as a batch
            return F.normalize(F.normalize(e, dim=-1).mean(0), dim=0), None  # CLIP4Clip meanP
        if c["type"] == "clip_vision":
            e, tokens = self._towers[m].embed(x[None])
            return e[0], tokens[0]
        if c["type"] == "whisper_encoder":
            return self._towers[m].embed(*x)
        return self._towers[m].embed(x)

    def forward(self, inputs):
        """inputs: {modality: image [C,H,W] | text ids [S] | audio (log-mel [mels, 2P], real sample count) |
        video [T,C,H,W]}. Returns a dict of every reported intermediate (absent keys: not computed)."""
        if not inputs:
            raise ValueError("a request needs at least one modality")
        unknown = set(inputs) - set(self.modalities)
        if unknown:
            raise ValueError(f"modalities {sorted(unknown)} are not in the model")
        out, tokens = {"embeddings": {}}, {}
        for m in self.modalities:
            if m in inputs:
                e, tokens[m] = self._embed(m, inputs[m])
                out["embeddings"][m] = e / e.norm()
        emb = out["embeddings"]
        fused = None
        if self.fusion_type == "gate":
            fused, out["gates"] = self.fusion([emb.get(m) for m in self.modalities])
        elif self.fusion_type == "adaptive_cross_attention":
            f = self.config["fusion"]
            if f["vision"] in inputs or f["text"] in inputs:
                fused, out["gates"] = self.fusion(tokens.get(f["vision"]), tokens.get(f["text"]))
        if fused is not None:
            out["fused"] = fused
            if hasattr(self, "classifier"):
                out["logits"] = self.classifier(fused)
                out["probabilities"] = torch.softmax(out["logits"], dim=-1)
        present = [m for m in self.modalities if m in emb]
        pairs = [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]
        out["similarities"] = {f"{a}-{b}": emb[a] @ emb[b] for a, b in pairs}
        if hasattr(self, "logit_scale"):  # CLIPModel.forward: logit_scale.exp() * cos
            out["similarity_logits"] = {k: self.logit_scale.exp() * v for k, v in out["similarities"].items()}
        return out


def config_from_hf_clip(hf):
    """A Hugging Face CLIPConfig dict as the omni config it loads as: image + text towers, no fusion or
    classifier, logit_scale on."""
    v, t = hf["vision_config"], hf["text_config"]
    keys = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_act", "layer_norm_eps"]
    image = {"type": "clip_vision", "prefix": "", **{k: v[k] for k in keys + ["image_size", "patch_size", "num_channels"]}}
    text = {"type": "clip_text", "prefix": "", **{k: t[k] for k in keys + ["vocab_size", "max_position_embeddings",
                                                                            "bos_token_id", "eos_token_id", "pad_token_id"]}}
    return {"model_type": "omni", "projection_dim": hf["projection_dim"], "modalities": ["image", "text"],
            "towers": {"image": image, "text": text}, "logit_scale": True}


# ---- Whisper's log-mel front end ------------------------------------------------------------------------

def whisper_mel_filters(dtype=torch.float64):
    """Whisper's filters = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): Slaney mel scale, Slaney
    (area) norm, 0..8000 Hz; [201, 80]."""
    import torchaudio
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fb = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 80, 16000, norm="slaney", mel_scale="slaney")
    finally:
        torch.set_default_dtype(old)
    return fb.to(dtype)


def fit_waveform(wave, max_source_positions):
    """The format's waveform rule: zero-pad or trim to n = 2·P·160 samples (Whisper pads to 30 s the same way)."""
    n = 2 * max_source_positions * 160
    wave = wave[:n]
    return F.pad(wave, (0, n - wave.shape[0]))


def whisper_log_mel(wave, filters):
    """openai-whisper's log_mel_spectrogram on an already fitted waveform: periodic Hann, n_fft 400, hop 160,
    centered reflect-padded STFT, |X|^2 with the last frame dropped, mel, log10(clamp 1e-10), max(x, max-8),
    (x+4)/4. Returns [80, n/160]."""
    window = torch.hann_window(400, periodic=True, dtype=wave.dtype)
    stft = torch.stft(wave, 400, 160, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = stft[..., :-1].abs() ** 2
    log_spec = torch.clamp(filters.T @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0
