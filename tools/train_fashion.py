#!/usr/bin/python3
"""Train the omni-fashion model (image, text, audio, video) on data/fashion (tools/fashion_data.py) and export it.

Run: OMP_NUM_THREADS=2 /usr/bin/python3 tools/train_fashion.py --steps 5000 --minutes 24   (seeded; the shipped model)
The model is tools/omni_torch.OmniModel (the runtime's layout): a clip_vision image tower, a clip_text text tower,
a whisper_encoder audio tower over Whisper's log-mel, and a video_frames video tower (CLIP4Clip meanP over the image
tower), each projected to a shared space; CLIP's symmetric InfoNCE between modality pairs (same-class items count as
positives); the gate fusion with a classifier, trained on random non-empty modality subsets. The batched forwards
below run the mirror's own modules, so the exported weights mean exactly what OmniModel computes per request.
Writes models/omni-fashion/{config.json, model.safetensors, tokenizer.model, samples/} and prints test accuracies.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data as fd  # noqa: E402
import omni_torch  # noqa: E402
import safetensors_np  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
M = ["image", "text", "audio", "video"]
E = 64
CONFIG = {
    "model_type": "omni", "projection_dim": E, "modalities": M,
    "towers": {
        "image": {"type": "clip_vision", "prefix": "", "hidden_size": 96, "intermediate_size": 192,
                  "num_hidden_layers": 3, "num_attention_heads": 4, "image_size": fd.IMAGE, "patch_size": 7,
                  "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
                  "image_mean": fd.MEAN, "image_std": fd.STD},
        "text": {"type": "clip_text", "prefix": "", "vocab_size": 320, "max_position_embeddings": 24,
                 "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 3,
                 "pad_token_id": 0, "tokenizer": {"type": "sentencepiece", "file": "tokenizer.model"}},
        "audio": {"type": "whisper_encoder", "prefix": "", "num_mel_bins": 80,
                  "max_source_positions": fd.MAX_SOURCE_POSITIONS, "d_model": 80, "encoder_layers": 2,
                  "encoder_attention_heads": 4, "encoder_ffn_dim": 160, "activation_function": "gelu",
                  "layer_norm_eps": 1e-5, "sampling_rate": fd.SR},
        "video": {"type": "video_frames", "image_tower": "image", "num_frames": fd.FRAMES}},
    "fusion": {"type": "gate"},
    "classifier": {"labels": fd.LABELS},
    "logit_scale": True}


# ---- batched forwards over the mirror's modules (OmniModel.forward runs one request) ----------------------

def embed_images(model, pixels):
    e, _ = model._towers["image"].embed(pixels)
    return F.normalize(e, dim=-1)


def embed_videos(model, frames):
    """frames [B, T, C, H, W] -> L2(mean_t L2(e_t)), as video_frames does per clip."""
    b, t = frames.shape[:2]
    e, _ = model._towers["image"].embed(frames.reshape(b * t, *frames.shape[2:]))
    return F.normalize(F.normalize(e, dim=-1).view(b, t, -1).mean(1), dim=-1)


def embed_texts(model, ids_list):
    """Right-padded batch; causal attention keeps the pad after the end token from reaching it."""
    tm = model._towers["text"].text_model
    n = max(len(x) for x in ids_list)
    ids = torch.zeros(len(ids_list), n, dtype=torch.int64)
    for i, x in enumerate(ids_list):
        ids[i, : len(x)] = torch.tensor(x)
    x = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding.weight[:n]
    tokens = tm.final_layer_norm(tm.encoder(x, causal=True))
    eos = torch.tensor([x.index(3) for x in ids_list])
    return F.normalize(model._towers["text"].text_projection(tokens[torch.arange(len(ids_list)), eos]), dim=-1)


def embed_audio(model, mel, samples):
    """mel [B, 80, 2P], samples [B]: WhisperEncoder per batch, mean over the first ceil(L/320) positions."""
    enc = model._towers["audio"].model.encoder
    x = F.gelu(enc.conv1(mel))
    x = F.gelu(enc.conv2(x)).transpose(1, 2) + enc.embed_positions.weight
    for layer in enc.layers:
        x = layer(x)
    h = enc.layer_norm(x)
    P = h.shape[1]
    v = torch.clamp(torch.ceil(samples.double() / 320).long(), 1, P)
    mask = (torch.arange(P)[None] < v[:, None]).to(h.dtype)
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return F.normalize(model._towers["audio"].audio_projection(pooled), dim=-1)


def fuse(model, emb, present):
    """emb: {m: [B, E]}; present [B, M] 0/1 -> logits [B, C] (GateFusion per row, absent blocks zero)."""
    b = present.shape[0]
    z = torch.cat([emb[m] * present[:, i: i + 1] if m in emb else torch.zeros(b, E) for i, m in enumerate(M)], 1)
    mask = present.repeat_interleave(E, 1)
    g = torch.sigmoid(model.fusion.gate(z)) * mask
    fused = (g * z).view(b, len(M), E).sum(1)
    return model.classifier(fused)


class Data:
    def __init__(self, root):
        tr = os.path.join(root, "train")
        self.images, self.image_y = np.load(f"{tr}/images.npy"), np.load(f"{tr}/image_labels.npy")
        self.mel, self.samples = np.load(f"{tr}/audio_mel.npy"), np.load(f"{tr}/audio_samples.npy")
        self.audio_y = np.load(f"{tr}/audio_labels.npy")
        with open(f"{tr}/text.json") as f:
            self.text = json.load(f)
        self.text_y = np.array([t["label"] for t in self.text])
        self.video, self.video_y = np.load(f"{tr}/video_u8.npy"), np.load(f"{tr}/video_labels.npy")
        self.by = {name: [np.nonzero(ys == c)[0] for c in range(10)] for name, ys in
                   (("image", self.image_y), ("audio", self.audio_y), ("text", self.text_y), ("video", self.video_y))}

    def pick(self, rng, m, ys):
        return np.array([rng.choice(self.by[m][y]) for y in ys])


class TextAugment:
    """Fresh training sentences: a training template and class name, with random words from the training templates
    inserted and dropped, so the text tower keys on the class name rather than on the templates it saw."""

    def __init__(self, root):
        import sentencepiece
        self.sp = sentencepiece.SentencePieceProcessor(model_file=f"{root}/tokenizer.model")
        self.words = sorted({w for t in fd.TRAIN_TEMPLATES for w in t.split() if "{}" not in w})

    def ids(self, rng, y):
        while True:
            words = rng.choice(fd.TRAIN_TEMPLATES).split()
            if rng.random() < 0.3 and len(words) > 1:
                drop = [i for i, w in enumerate(words) if "{}" not in w]
                if drop:
                    del words[rng.choice(drop)]
            for _ in range(rng.integers(0, 3)):
                words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(self.words)))
            ids = [1] + self.sp.encode(" ".join(words).format(rng.choice(fd.NAMES[y]))) + [3]
            if len(ids) <= CONFIG["towers"]["text"]["max_position_embeddings"]:
                return ids


def augment_images(rng, u8):
    """Random horizontal flips and shifts by up to 2 pixels (zero fill) on u8 [B, 28, 28]."""
    out = np.zeros_like(u8)
    for i, x in enumerate(u8):
        if rng.random() < 0.5:
            x = x[:, ::-1]
        dy, dx = rng.integers(-2, 3, 2)
        out[i, max(dy, 0): 28 + min(dy, 0), max(dx, 0): 28 + min(dx, 0)] = \
            x[max(-dy, 0): 28 + min(-dy, 0), max(-dx, 0): 28 + min(-dx, 0)]
    return out


def info_nce(a, b, ya, yb, scale):
    """CLIP's symmetric InfoNCE with every same-class pair a positive (the batch holds several per class)."""
    logits = scale * a @ b.T
    pos = (ya[:, None] == yb[None, :]).float()
    # the two sides may differ in size: rows or columns without a positive drop out
    ra, rb = pos.sum(1) > 0, pos.sum(0) > 0
    la = -(torch.log_softmax(logits, 1) * pos).sum(1)[ra] / pos.sum(1)[ra]
    lb = -(torch.log_softmax(logits, 0) * pos).sum(0)[rb] / pos.sum(0)[rb]
    return (la.mean() + lb.mean()) / 2


def train(model, data, args):
    """Each step draws one label per row; row i carries label ys[i] in every modality, so the first rows fuse.
    Batches per modality differ: images are the weakest tower and audio the dearest, and a video clip trains on
    a few of its frames (video_frames pools frames by their mean, so fewer frames estimate the same embedding)."""
    rng = np.random.default_rng(args.seed)
    text_aug = TextAugment(args.data)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    n = {"image": args.batch_image, "text": args.batch_text, "audio": args.batch_audio, "video": args.batch_video}
    start, step, warm, skipped = time.time(), 0, 200, 0
    budget = args.minutes * 60
    total = args.steps or 10 ** 9
    while step < total and time.time() - start < budget:
        frac = max(step / total, (time.time() - start) / budget)  # whichever limit comes first ends the schedule
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * frac))
        ys = rng.integers(0, 10, max(n.values()))
        ki, ka, kv = (data.pick(rng, m, ys[:n[m]]) for m in ("image", "audio", "video"))
        frames = np.sort(np.stack([rng.choice(fd.FRAMES, args.video_frames, replace=False) for _ in kv]), 1)
        imgs = torch.from_numpy(fd.normalize(np.repeat(augment_images(rng, data.images[ki])[:, None], 3, 1)))
        emb = {"image": embed_images(model, imgs),
               "text": embed_texts(model, [text_aug.ids(rng, y) for y in ys[:n["text"]]]),
               "audio": embed_audio(model, torch.from_numpy(data.mel[ka]), torch.from_numpy(data.samples[ka])),
               "video": embed_videos(model, torch.from_numpy(fd.normalize(data.video[kv[:, None], frames])))}
        y = torch.from_numpy(ys)
        scale = model.logit_scale.exp().clamp(max=100)
        ce = 0.0
        for i, m in enumerate(M):  # every modality alone
            present = torch.zeros(n[m], len(M))
            present[:, i] = 1
            ce = ce + F.cross_entropy(fuse(model, {m: emb[m]}, present), y[:n[m]])
        nf = min(n.values())  # random non-empty subsets on the rows every modality has
        present = torch.from_numpy((rng.random((nf, len(M))) < 0.5).astype(np.float32))
        present[present.sum(1) == 0, int(rng.integers(0, len(M)))] = 1
        ce = ce + F.cross_entropy(fuse(model, {k: v[:nf] for k, v in emb.items()}, present), y[:nf])
        nce = sum(info_nce(emb[a], emb[b], y[:n[a]], y[:n[b]], scale)
                  for a, b in (("image", "text"), ("image", "audio"), ("text", "audio"), ("image", "video"),
                               ("video", "text")))
        loss = ce + 0.5 * nce
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if not torch.isfinite(norm):  # a rare non-finite batch: skip it, as AMP's GradScaler does, and count it
            skipped += 1
            print(f"step {step}: non-finite loss or gradient ({loss.item():.3g}), skipped ({skipped})", flush=True)
            if skipped > 20:
                raise SystemExit(f"train_fashion: {skipped} non-finite steps by step {step}; lower --lr")
            continue
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} {time.time() - start:.0f}s loss {loss.item():.3f} ce {float(ce):.3f}", flush=True)
    return step, time.time() - start, skipped


def test_embeddings(model, root):
    """Every test item's embedding per modality, batched (the eval split of docs/eval-data.md)."""
    with torch.no_grad():
        xte = np.load(f"{root}/test_images.npy")
        img = torch.cat([embed_images(model, torch.from_numpy(fd.normalize(np.repeat(xte[i:i + 500, None], 3, 1))))
                         for i in range(0, len(xte), 500)])
        mel, smp = np.load(f"{root}/test_audio_mel.npy"), np.load(f"{root}/test_audio_samples.npy")
        aud = embed_audio(model, torch.from_numpy(mel), torch.from_numpy(smp))
        with open(f"{root}/test_text.json") as f:
            texts = json.load(f)
        txt = embed_texts(model, [t["ids"] for t in texts])
        names = sorted(os.listdir(f"{root}/test/video"))
        vids = torch.from_numpy(np.stack([np.load(f"{root}/test/video/{n}") for n in names if n.endswith(".npy")]))
        vid = torch.cat([embed_videos(model, vids[i:i + 100]) for i in range(0, len(vids), 100)])
    return img, aud, txt, vid


def accuracies(model, root):
    """Per modality and for the fusions on the test rows of labels.csv (each row: its image, audio, text, video)."""
    import csv
    img, aud, txt, vid = test_embeddings(model, root)
    with open(f"{root}/test_text.json") as f:
        text_index = {t["text"]: i for i, t in enumerate(json.load(f))}
    rows = list(csv.DictReader(open(f"{root}/test/labels.csv")))
    y = torch.tensor([fd.LABELS.index(r["label"]) for r in rows])
    ia = torch.tensor([int(os.path.basename(r["audio"])[:4]) for r in rows])
    iv = torch.tensor([int(os.path.basename(r["video"])[:4]) for r in rows])
    it = torch.tensor([text_index[r["text"]] for r in rows])
    emb = {"image": img, "text": txt[it], "audio": aud[ia], "video": vid[iv]}
    out = {}
    with torch.no_grad():
        for subset in (["image"], ["text"], ["audio"], ["video"], ["image", "audio"], ["image", "text"], M):
            present = torch.tensor([[float(m in subset) for m in M]]).repeat(len(y), 1)
            pred = fuse(model, emb, present).argmax(1)
            out["+".join(subset)] = float((pred == y).double().mean())
        names = [omni_torch_text(model, root, n) for n in fd.LABELS]
        zs = (img @ torch.stack(names).T).argmax(1)
        out["image->text zero-shot"] = float((zs == y).double().mean())
    return out


def omni_torch_text(model, root, s):
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=f"{root}/tokenizer.model")
    return embed_texts(model, [[1] + sp.encode(s) + [3]])[0]


def export(model, root, folder):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "samples"))
    tensors = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    safetensors_np.save(os.path.join(folder, "model.safetensors"), tensors, metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    shutil.copy(f"{root}/tokenizer.model", folder)
    # samples for `omni demo`: the first test row's files
    import csv
    row = next(csv.DictReader(open(f"{root}/test/labels.csv")))
    s, t = os.path.join(folder, "samples"), f"{root}/test"
    shutil.copy(f"{t}/{row['image']}", f"{s}/image.png")
    shutil.copy(f"{t}/{row['audio']}", f"{s}/speech.wav")
    shutil.copy(f"{t}/{row['video']}", f"{s}/video.npy")
    shutil.copy(f"{t}/{row['video'][:-4]}.gif", f"{s}/video.gif")
    with open(f"{s}/text.txt", "w") as f:
        f.write(row["text"] + "\n")
    with open(f"{s}/label.txt", "w") as f:
        f.write(row["label"] + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(REPO, "data", "fashion"))
    p.add_argument("--out", default=os.path.join(REPO, "models", "omni-fashion"))
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget")
    p.add_argument("--steps", type=int, default=0, help="step count for the schedule (0: the time budget only)")
    p.add_argument("--batch-image", type=int, default=128)
    p.add_argument("--batch-text", type=int, default=96)
    p.add_argument("--batch-audio", type=int, default=32)
    p.add_argument("--batch-video", type=int, default=48, help="clips per step")
    p.add_argument("--video-frames", type=int, default=3, help="frames drawn per training clip")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--init", help="continue from this model folder's model.safetensors (a longer run in parts)")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = omni_torch.OmniModel(CONFIG)
    with torch.no_grad():
        model.vision_model.embeddings.class_embedding.normal_(0, 0.02)
        model.logit_scale.fill_(math.log(10.0))
    if args.init:
        tensors, _, _ = safetensors_np.load(os.path.join(args.init, "model.safetensors"))
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    data = Data(args.data)
    steps, secs, skipped = train(model, data, args)
    model.eval()
    acc = accuracies(model, args.data)
    export(model, args.data, args.out)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"steps": steps, "skipped": skipped, "seconds": round(secs), "parameters": n, "accuracy": acc},
                     indent=1))
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump({"command": " ".join(sys.argv[1:]), "steps": steps, "skipped": skipped, "seconds": round(secs),
                   "parameters": n, "pytorch_accuracy": acc}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
