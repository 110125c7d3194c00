#!/usr/bin/python3
"""The omni-fashion data set, built on this machine from Debian packages (nothing is downloaded).

Run: OMP_NUM_THREADS=2 /usr/bin/python3 tools/fashion_data.py [--out data/fashion]   (seeded)
- images: Fashion-MNIST (package dataset-fashion-mnist), its official train/test split;
- speech: the ten class names spoken by espeak-ng (accents x voice variants x speeds x pitches), gain and light
  noise, resampled to 16 kHz; the test split uses accents and variants training never saw;
- text: class names and paraphrases in templates; the test split uses held-out templates;
- video: 8-frame clips of one item moving, turning and scaling over a coloured background (test clips from test items).
Writes train tensors (train/*.npy, train/text.json), the SentencePiece tokenizer (tokenizer.model) and the test split
in the eval layout of docs/eval-data.md (test/labels.csv, test/queries.csv, test/{images,audio,video}/).
"""
import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soundfile
import torch
import torchaudio
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import omni_torch  # noqa: E402

MNIST = "/usr/share/datasets/fashion-mnist"
LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
SPOKEN = ["tee shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
# Paraphrases per class: no class's names contain another's ("shirt" vs "t-shirt": the t-shirt class says "tee").
NAMES = [["t-shirt", "tee", "top", "tee shirt"], ["trouser", "trousers", "pants", "slacks"],
         ["pullover", "sweater", "jumper"], ["dress", "gown", "frock"], ["coat", "overcoat", "parka"],
         ["sandal", "sandals", "flip flop"], ["shirt", "button-down", "blouse"], ["sneaker", "sneakers", "trainer"],
         ["bag", "handbag", "purse"], ["ankle boot", "boot", "booties"]]
TRAIN_TEMPLATES = [
    "a photo of a {}", "a picture of a {}", "an image of the {}", "{}", "the {}", "a {}", "this is a {}",
    "someone is wearing a {}", "a person in a {}", "a close-up of a {}", "a black and white photo of a {}",
    "i bought a new {}", "a {} on sale", "my favourite {}", "a cheap {}", "an expensive {}", "a {} for the summer",
    "a {} for the winter", "look at this {}", "a small {}", "a large {}", "a blurry photo of a {}",
    "a {} in the shop window", "she likes her {}", "he lost his {}", "a worn {}", "a brand new {}",
    "a {} made of cotton", "a product shot of a {}", "a drawing of a {}", "a low resolution {}", "it is a {}",
    "we sell this {}", "catalogue item: {}", "a plain {}", "a striped {}", "a dark {}", "a light {}",
    "there is a {} here", "the {} is folded"]
TEST_TEMPLATES = ["a pixelated image of a {}", "a grayscale picture of the {}", "you can see a {}",
                  "a {} from the catalogue", "an old {}", "a photograph showing a {}", "someone holding a {}",
                  "a tiny {}"]
TRAIN_ACCENTS = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland"]
TEST_ACCENTS = ["en-029", "en-gb-x-gbcwmd", "en-gb-x-gbclan"]
TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "croak", "whisper", "robert",
                  "paul", "linda", "steph"]
TEST_VARIANTS = ["m6", "m7", "f4", "f5", "klatt3", "david", "belinda", "rob"]
SR = 16000
MAX_SOURCE_POSITIONS = 64  # 2·64·160 = 20480 samples: 1.28 s, longer than any class name spoken here
IMAGE = 28
FRAMES = 8
MEAN, STD = [0.2860] * 3, [0.3530] * 3  # Fashion-MNIST's pixel mean and std


def idx(name):
    with gzip.open(os.path.join(MNIST, name)) as f:
        raw = f.read()
    if raw[2] == 8 and raw[3] == 3:
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def normalize(u8):
    """[..., 3, H, W] u8 -> the runtime's pixels: u8 / 255, then (x - mean) / std, as float32."""
    x = u8.astype(np.float64) / 255.0
    return ((x - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]).astype(np.float32)


def speak(args):
    text, voice, speed, pitch = args
    r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                       check=True, capture_output=True)
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(r.stdout)
        f.flush()
        wave, rate = soundfile.read(f.name, dtype="float64")
    return wave, rate


def augment(rng, wave, rate):
    """Resample to 16 kHz (torchaudio's sinc), trim silence, a short lead-in, gain, light noise; PCM16 values."""
    wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, SR).numpy()
    loud = np.nonzero(np.abs(wave) > 0.01)[0]
    if len(loud):
        wave = wave[max(loud[0] - 400, 0): loud[-1] + 800]
    wave = np.concatenate([np.zeros(int(rng.integers(0, 2400))), wave])
    wave = wave / max(np.abs(wave).max(), 1e-6) * rng.uniform(0.1, 0.9)
    wave = wave + rng.uniform(0.0005, 0.01) * rng.standard_normal(len(wave))
    return np.clip(np.round(wave * 32768), -32768, 32767).astype(np.int16)


def log_mel(pcm, filters):
    """The runtime's front end on a PCM16 WAV: samples / 32768, fitted to 2·P·160, Whisper's log-mel."""
    wave = torch.from_numpy(pcm.astype(np.float64) / 32768.0)
    return omni_torch.whisper_log_mel(omni_torch.fit_waveform(wave, MAX_SOURCE_POSITIONS), filters).numpy().astype(np.float32)


def speech(rng, accents, variants, per_voice, copies):
    jobs, labels = [], []
    for a in accents:
        for v in variants:
            for y, text in enumerate(SPOKEN):
                for _ in range(per_voice):
                    jobs.append((text, f"{a}+{v}", int(rng.integers(110, 230)), int(rng.integers(15, 90))))
                    labels.append(y)
    with ThreadPoolExecutor(2) as pool:
        raw = list(pool.map(speak, jobs))
    pcms, ys = [], []
    for (wave, rate), y in zip(raw, labels):
        for _ in range(copies):
            pcms.append(augment(rng, wave, rate))
            ys.append(y)
    return pcms, np.array(ys)


def background(rng):
    """A smooth coloured gradient with a few soft blobs, u8 [3, H, W]."""
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE] / IMAGE
    c0, c1 = rng.uniform(0, 0.5, 3), rng.uniform(0, 0.5, 3)
    t = np.clip(rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy + 0.5, 0, 1)
    bg = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    for _ in range(int(rng.integers(0, 3))):
        cx, cy, r = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.1, 0.3)]
        bg = bg + rng.uniform(-0.2, 0.2, 3)[:, None, None] * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2)
    return np.clip(bg * 255, 0, 255)


def clip(rng, item):
    """8 frames u8 [T, 3, H, W]: the item translates, turns and scales linearly from a start to an end pose."""
    bg = background(rng)
    a0, a1 = rng.uniform(-25, 25, 2)
    s0, s1 = rng.uniform(0.7, 1.05, 2)
    (x0, y0), (x1, y1) = rng.uniform(-5, 5, (2, 2))
    tint = rng.uniform(0.7, 1.0, 3)
    frames = []
    for i in range(FRAMES):
        f = i / (FRAMES - 1)
        a, s, dx, dy = a0 + (a1 - a0) * f, s0 + (s1 - s0) * f, x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        big = Image.fromarray(item).resize((int(28 * s), int(28 * s)), Image.BICUBIC).rotate(a, Image.BICUBIC)
        canvas = Image.new("L", (IMAGE, IMAGE))
        canvas.paste(big, (int(round((IMAGE - big.width) / 2 + dx)), int(round((IMAGE - big.height) / 2 + dy))))
        fg = np.asarray(canvas, np.float64) / 255.0
        alpha = np.clip(fg * 3, 0, 1)
        frames.append(np.clip(np.round(alpha * fg * 255 * tint[:, None, None] + (1 - alpha) * bg), 0, 255))
    return np.stack(frames).astype(np.uint8)


def sentences(templates):
    return [(t.format(n), y) for y, names in enumerate(NAMES) for n in names for t in templates]


def train_tokenizer(out, lines):
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "corpus.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # relative paths: the model records its trainer's arguments, and a temp path would differ per run
        subprocess.run(["spm_train", "--input=corpus.txt", "--model_prefix=spm", "--model_type=bpe",
                        "--vocab_size=320", "--bos_id=1", "--eos_id=3", "--pad_id=0", "--unk_id=2",
                        "--character_coverage=1.0", "--num_threads=1", "--normalization_rule_name=identity",
                        "--byte_fallback=false", "--minloglevel=2"], check=True, capture_output=True, cwd=tmp)
        shutil.copy(os.path.join(tmp, "spm.model"), os.path.join(out, "tokenizer.model"))


def write_gif(path, frames):
    imgs = [Image.fromarray(f.transpose(1, 2, 0)) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=125, loop=0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fashion"))
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--train-videos", type=int, default=6000)
    p.add_argument("--test-videos", type=int, default=1000)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    tr, te = os.path.join(out, "train"), os.path.join(out, "test")
    for d in (tr, f"{te}/images", f"{te}/audio", f"{te}/video"):
        os.makedirs(d)
    xtr, ytr = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    xte, yte = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    np.save(f"{tr}/images.npy", xtr)
    np.save(f"{tr}/image_labels.npy", ytr)
    np.save(f"{out}/test_images.npy", xte)
    np.save(f"{out}/test_image_labels.npy", yte)
    print("images", xtr.shape, xte.shape, flush=True)

    filters = omni_torch.whisper_mel_filters()
    pcm, ya = speech(rng, TRAIN_ACCENTS, TRAIN_VARIANTS, 2, 2)
    np.save(f"{tr}/audio_mel.npy", np.stack([log_mel(x, filters) for x in pcm]))
    np.save(f"{tr}/audio_samples.npy", np.array([len(x) for x in pcm]))
    np.save(f"{tr}/audio_labels.npy", ya)
    pcm_te, ya_te = speech(rng, TEST_ACCENTS, TEST_VARIANTS, 1, 1)
    audio_files = [[] for _ in LABELS]
    for k, (x, y) in enumerate(zip(pcm_te, ya_te)):
        name = f"audio/{k:04d}.wav"
        soundfile.write(f"{te}/{name}", x, SR, subtype="PCM_16")
        audio_files[y].append(name)
    np.save(f"{out}/test_audio_mel.npy", np.stack([log_mel(x, filters) for x in pcm_te]))
    np.save(f"{out}/test_audio_samples.npy", np.array([len(x) for x in pcm_te]))
    np.save(f"{out}/test_audio_labels.npy", ya_te)
    print("speech", len(pcm), len(pcm_te), flush=True)

    train_text, test_text = sentences(TRAIN_TEMPLATES), sentences(TEST_TEMPLATES)
    train_tokenizer(out, [s for s, _ in train_text])
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=f"{out}/tokenizer.model")
    with open(f"{tr}/text.json", "w") as f:
        json.dump([{"text": s, "ids": [1] + sp.encode(s) + [3], "label": y} for s, y in train_text], f)
    with open(f"{out}/test_text.json", "w") as f:
        json.dump([{"text": s, "ids": [1] + sp.encode(s) + [3], "label": y} for s, y in test_text], f)
    print("text", len(train_text), len(test_text), flush=True)

    vtr_items = rng.integers(0, len(xtr), args.train_videos)
    np.save(f"{tr}/video_u8.npy", np.stack([clip(rng, xtr[i]) for i in vtr_items]))
    np.save(f"{tr}/video_labels.npy", ytr[vtr_items])
    vte_items = rng.integers(0, len(xte), args.test_videos)
    video_files = [[] for _ in LABELS]
    for k, i in enumerate(vte_items):
        frames = clip(rng, xte[i])
        np.save(f"{te}/video/{k:04d}.npy", normalize(frames))
        write_gif(f"{te}/video/{k:04d}.gif", frames)
        video_files[yte[i]].append(f"video/{k:04d}.npy")
    print("video", len(vtr_items), len(vte_items), flush=True)

    text_by_class = [[s for s, y in test_text if y == c] for c in range(len(LABELS))]
    with open(f"{te}/labels.csv", "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["id", "label", "image", "audio", "video", "text"])
        for k, (img, y) in enumerate(zip(xte, yte)):
            name = f"images/{k:05d}.png"
            Image.fromarray(img, "L").save(f"{te}/{name}")
            pick = lambda xs: xs[int(rng.integers(0, len(xs)))]  # noqa: E731
            w.writerow([k, LABELS[y], name, pick(audio_files[y]), pick(video_files[y]), pick(text_by_class[y])])
    with open(f"{te}/queries.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        for y, name in enumerate(LABELS):
            for t in TEST_TEMPLATES:
                w.writerow([t.format(name), name])
    print("wrote", out)


if __name__ == "__main__":
    main()
