#!/usr/bin/python3
"""PyTorch reference outputs of the shipped omni-fashion model, for tests/OmniKernels.Tests/Model/FashionModelTests.cs.

Run: /usr/bin/python3 tools/make_fashion_vectors.py   (env OMNI_FASHION_MODEL / OMNI_FASHION_VECTORS override the folders; after tools/fashion_data.py and tools/train_fashion.py;
rebuilds every file byte-identically from models/omni-fashion and data/fashion)
Writes tests/OmniKernels.Tests/models/omni-fashion-vectors/vectors/: inputs/ (the bundled samples of
models/omni-fashion/samples and a few test-split items: PNG, WAV, video .npy), cases.json and expected/<case>/*.npy
in float64, in the case format of tools/make_model_vectors.py (tools/README.md), computed by the float64 mirror
(tools/omni_torch.OmniModel) from the shipped float32 weights and the runtime's preprocessing of those files.
"""
import csv
import itertools
import json
import os
import shutil
import sys

import numpy as np
import soundfile
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data as fd  # noqa: E402
import make_model_vectors as mmv  # noqa: E402
import omni_torch  # noqa: E402
import safetensors_np  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.environ.get("OMNI_FASHION_MODEL", os.path.join(REPO, "models", "omni-fashion"))
DATA = os.path.join(REPO, "data", "fashion", "test")
VEC = os.environ.get("OMNI_FASHION_VECTORS",
                     os.path.join(REPO, "tests", "OmniKernels.Tests", "models", "omni-fashion-vectors", "vectors"))
EXTRA_ROWS = [1, 2, 3]  # test rows besides the bundled sample (row 0): different classes, their own files


def load_model():
    with open(os.path.join(MODEL, "config.json")) as f:
        config = json.load(f)
    model = omni_torch.OmniModel(config)
    tensors, dtypes, _ = safetensors_np.load(os.path.join(MODEL, "model.safetensors"))
    assert all(d == "F32" for d in dtypes.values())
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    return config, model.double().eval()


def main():
    config, model = load_model()
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(MODEL, "tokenizer.model"))
    ctx = config["towers"]["text"]["max_position_embeddings"]
    P = config["towers"]["audio"]["max_source_positions"]
    filters = omni_torch.whisper_mel_filters()
    if os.path.isdir(VEC):
        shutil.rmtree(VEC)
    os.makedirs(os.path.join(VEC, "inputs"))
    rows = list(csv.DictReader(open(os.path.join(DATA, "labels.csv"))))
    samples = os.path.join(MODEL, "samples")
    items = {"s": {"image": f"{samples}/image.png", "audio": f"{samples}/speech.wav", "video": f"{samples}/video.npy",
                   "text": open(f"{samples}/text.txt").read().strip()}}
    for r in EXTRA_ROWS:
        row = rows[r]
        items[f"r{r}"] = {"image": f"{DATA}/{row['image']}", "audio": f"{DATA}/{row['audio']}",
                          "video": f"{DATA}/{row['video']}", "text": row["text"]}
    images, texts, waves, videos, entries = {}, {}, {}, {}, {}
    for k, it in items.items():
        shutil.copy(it["image"], f"{VEC}/inputs/image_{k}.png")
        u8 = np.asarray(Image.open(it["image"]).convert("RGB")).transpose(2, 0, 1)
        x = u8.astype(np.float64) / 255.0  # the runtime's pixels (the PNG is already image_size: resize and crop are identities)
        images[k] = (x - np.array(fd.MEAN)[:, None, None]) / np.array(fd.STD)[:, None, None]
        shutil.copy(it["audio"], f"{VEC}/inputs/audio_{k}.wav")
        pcm, rate = soundfile.read(it["audio"], dtype="int16")
        assert rate == fd.SR
        wave = torch.from_numpy(pcm.astype(np.float64) / 32768.0)
        waves[k] = (omni_torch.whisper_log_mel(omni_torch.fit_waveform(wave, P), filters), len(pcm))
        shutil.copy(it["video"], f"{VEC}/inputs/video_{k}.npy")
        videos[k] = np.load(it["video"]).astype(np.float64)
        entries[k] = {"png": f"inputs/image_{k}.png", "wav": f"inputs/audio_{k}.wav", "samples": len(pcm),
                      "frames": f"inputs/video_{k}.npy"}
        texts[k] = {"text": it["text"], "ids": mmv.spm_ids(sp, it["text"], ctx)}
    cases = []
    for k in items:
        for r in range(1, 5):
            for subset in itertools.combinations(config["modalities"], r):
                if k == "s" or r in (1, 4):
                    cases.append((f"{k}_{'_'.join(subset)}", {m: k for m in subset}))
    listed = mmv.run_cases(model, VEC, cases, images, texts, waves, videos, entries)
    for c in listed:  # one item's entry holds every modality's file: keep each input's own
        for m, v in c["inputs"].items():
            own = {"image": ("png",), "audio": ("wav", "samples"), "video": ("frames",)}.get(m)
            if own:
                c["inputs"][m] = {"key": v["key"], **{f: v[f] for f in own}}
    mmv.write_cases_json(VEC, "omni-fashion", config, listed)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(VEC) for f in fs)
    print(f"wrote {len(listed)} cases, {total / 1e6:.2f} MB under {VEC}")


if __name__ == "__main__":
    main()
