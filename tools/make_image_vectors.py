#!/usr/bin/python3
"""Test vectors for image decoding and CLIP-style preprocessing, from Pillow and NumPy.

Run with Debian's python3-pil (9.4) and python3-numpy:  /usr/bin/python3 tools/make_image_vectors.py
Writes tests/OmniKernels.Tests/vectors/image_*.npy (about 0.5 MB in all).

The test project copies only vectors/*.npy to its output, so every image file is stored as its raw
bytes in a 1-D int8 .npy (image_<name>_file.npy; the bytes reinterpreted as int8, because the
project's NpyFile reads int8 but not uint8); the tests write those bytes to a temporary file and
decode that. Pixels are stored the same way (int8 holding uint8 values).

  image_<name>_file.npy            the encoded file, raw bytes
  image_<name>_{l,rgb,rgba}.npy    Pillow's decoded pixels, flatten(Image.open(f), MODE), [H, W, C]: an image
                                   with alpha is composited on white before L or RGB drops it
  image_<bmp,tga>_file.npy         files in formats the decoder rejects (not enabled in its configuration)
  image_<case>_<cfg>_<filter>_<convention>.npy
                                   expected float32 [C, crop, crop] from the pixels of <case>

Preprocessing follows HF CLIPImageProcessor (convert_rgb, resize, center_crop, rescale, normalize):
  * resize so that the shorter side equals `size`; the longer side is int(size * long / short)
    (HF get_resize_output_image_size with default_to_square=False, torchvision's
    _compute_resized_output_size: the same truncation), with PIL's Image.resize in 8 bits;
  * centre crop to crop x crop. HF floors the offset, top = (h - crop) // 2; torchvision's
    center_crop rounds half to even, top = int(round((h - crop) / 2.0)). They differ when
    h - crop = 3 (mod 4), so both are written: `hf` and `tv`; the BOTH_AXES configurations make
    them differ on both axes at once;
  * rescale: HF multiplies in float64 by 1/255 and casts to float32 (`hf`); torchvision's ToTensor
    divides in float32 by 255 (`tv`); the two agree on all 256 values (checked below). Then
    (x - mean) / std in float32 (both).
A NumPy port of Pillow's fixed-point resampler (Resample.c: precompute_coeffs, normalize_coeffs_8bpc,
the horizontal then vertical 8-bit passes) is checked here against Image.resize bit for bit: that port
is what the device kernels implement.
"""
import io
import math
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
GRAY_MEAN = [0.5]
GRAY_STD = [0.25]
CONFIGS = [("s24c24", 24, 24), ("s32c28", 32, 28), ("s64c60", 64, 60)]  # the last one upscales
# Resized sizes whose excess over the crop is 3 (mod 4) on both axes, so that HF's and torchvision's crop
# offsets differ vertically and horizontally (61x47 -> 36x28 crop 25; 33x50 -> 24x36 crop 21).
BOTH_AXES = [("rgb61x47", "s28c25", 28, 25), ("gray33x50", "s24c21", 24, 21)]
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


# ---- Pillow's resampler, ported (Resample.c, Pillow 9.4) -------------------------------------------------

PRECISION_BITS = 32 - 8 - 2


def bicubic_filter(x):
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def bilinear_filter(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


PORT_FILTERS = {"bicubic": (bicubic_filter, 2.0), "bilinear": (bilinear_filter, 1.0)}


def precompute_coeffs(in_size, out_size, filt):
    fn, fsupport = filt
    scale = filterscale = in_size / out_size
    if filterscale < 1.0:
        filterscale = 1.0
    support = fsupport * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds, kk = [], np.zeros((out_size, ksize), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [fn((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for v in w:
            ww += v
        w = [v / ww if ww != 0.0 else v for v in w]
        for x, v in enumerate(w):
            kk[xx, x] = int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PRECISION_BITS))
        bounds.append((xmin, xmax))
    return bounds, kk


def clip8(ss):
    return np.clip(ss >> PRECISION_BITS, 0, 255)


def port_resize(pixels, out_w, out_h, name):
    """pixels: uint8 [H, W, C]; Pillow's two 8-bit passes (horizontal, then vertical)."""
    h, w, _ = pixels.shape
    src = pixels.astype(np.int64)
    hb, hk = precompute_coeffs(w, out_w, PORT_FILTERS[name])
    vb, vk = precompute_coeffs(h, out_h, PORT_FILTERS[name])
    tmp = np.empty((h, out_w, src.shape[2]), dtype=np.int64)
    for x, (xmin, n) in enumerate(hb):
        tmp[:, x, :] = clip8((1 << (PRECISION_BITS - 1)) + np.einsum("hkc,k->hc", src[:, xmin:xmin + n, :], hk[x, :n]))
    out = np.empty((out_h, out_w, src.shape[2]), dtype=np.int64)
    for y, (ymin, n) in enumerate(vb):
        out[y] = clip8((1 << (PRECISION_BITS - 1)) + np.einsum("kwc,k->wc", tmp[ymin:ymin + n], vk[y, :n]))
    return out.astype(np.uint8)


# ---- HF CLIPImageProcessor / torchvision steps -------------------------------------------------------------

def resized_size(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)  # (width, height)


def pil_resize(pixels, out_w, out_h, resample):
    mode = "L" if pixels.shape[2] == 1 else "RGB"
    im = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    out = np.array(im.resize((out_w, out_h), resample=resample))
    return out.reshape(out_h, out_w, -1)


def preprocess(pixels, size, crop, filter_name, mean, std, convention):
    h, w, _ = pixels.shape
    out_w, out_h = resized_size(w, h, size)
    resized = pil_resize(pixels, out_w, out_h, FILTERS[filter_name])
    ported = port_resize(pixels, out_w, out_h, filter_name)
    assert np.array_equal(resized, ported), f"the NumPy port of Pillow's resampler differs ({filter_name}, {w}x{h} -> {out_w}x{out_h})"
    if convention == "hf":
        top, left = (out_h - crop) // 2, (out_w - crop) // 2
    else:
        top, left = int(round((out_h - crop) / 2.0)), int(round((out_w - crop) / 2.0))
    cropped = resized[top:top + crop, left:left + crop, :]
    assert cropped.shape[:2] == (crop, crop)
    if convention == "hf":
        x = (cropped.astype(np.float64) * (1 / 255)).astype(np.float32)
    else:
        x = cropped.astype(np.float32) / np.float32(255)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    assert x.dtype == np.float32
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# ---- hand-made bad files ------------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png():
    """A valid PNG signature and IHDR claiming 100000 x 100000 8-bit RGB, a tiny IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


# ---- writing ------------------------------------------------------------------------------------------------

def flatten(im, mode):
    """im.convert(mode), but an image with alpha converted to a mode without it is first composited on opaque
    white with Image.alpha_composite: transformers' convert_to_rgb does this (image_transforms.py), and the
    decoder does the same (ImageFile.ConvertChannels)."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if mode in ("L", "RGB") and has_alpha:
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im.convert("RGBA")).convert(mode)
    return im.convert(mode)


def save(name, array):
    np.save(os.path.join(OUT, f"image_{name}.npy"), np.ascontiguousarray(array))


def save_bytes(name, data):
    save(name, np.frombuffer(data, dtype=np.uint8).view(np.int8))


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.startswith("image_") and f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20240611)

    rgb = Image.fromarray(rng.integers(0, 256, size=(47, 61, 3), dtype=np.uint8), "RGB")  # 61 wide, 47 high
    yy, xx = np.mgrid[0:120, 0:80]
    grad = np.stack([xx * 255 // 79, yy * 255 // 119, (xx + yy) * 255 // 198], axis=-1).astype(np.uint8)
    gradient = Image.fromarray(grad, "RGB")  # 80 wide, 120 high
    gray = Image.fromarray(((np.mgrid[0:50, 0:33][1] * 7 + rng.integers(0, 60, size=(50, 33))) % 256).astype(np.uint8), "L")
    rgba = Image.fromarray(rng.integers(0, 256, size=(15, 20, 4), dtype=np.uint8), "RGBA")
    la = Image.fromarray(rng.integers(0, 256, size=(9, 14, 2), dtype=np.uint8), "LA")
    bmp = Image.fromarray(rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8), "RGB")  # odd width: padded rows
    pal = Image.fromarray(rng.integers(0, 256, size=(13, 19), dtype=np.uint8), "P")
    pal.putpalette(rng.integers(0, 256, size=768, dtype=np.uint8).tobytes())
    tga = Image.fromarray(rng.integers(0, 256, size=(11, 21, 3), dtype=np.uint8), "RGB")

    files = {
        "rgb61x47_png": encode(rgb, "PNG"),
        "gradient80x120_jpg": encode(gradient, "JPEG", quality=90),
        "gray33x50_png": encode(gray, "PNG"),
        "rgba20x15_png": encode(rgba, "PNG"),
        "la14x9_png": encode(la, "PNG"),
        "pal19x13_gif": encode(pal, "GIF"),
    }
    for name, data in {"rgb23x17_bmp": encode(bmp, "BMP"), "rgb21x11_tga": encode(tga, "TGA")}.items():
        save_bytes(f"{name}_file", data)
    for name, data in files.items():
        save_bytes(f"{name}_file", data)
        im = Image.open(io.BytesIO(data))
        for mode in ("L", "RGB", "RGBA"):
            save(f"{name}_{mode.lower()}", np.array(flatten(im, mode)).reshape(im.height, im.width, -1).view(np.int8))

    save_bytes("huge_png_file", huge_png())
    jpg = files["gradient80x120_jpg"]
    save_bytes("truncated_jpg_file", jpg[: len(jpg) // 2])

    cases = [
        ("rgb61x47", np.array(rgb), CLIP_MEAN, CLIP_STD),
        ("gradient80x120", np.array(Image.open(io.BytesIO(jpg)).convert("RGB")), CLIP_MEAN, CLIP_STD),
        ("gray33x50", np.array(gray)[:, :, None], GRAY_MEAN, GRAY_STD),
    ]
    v = np.arange(256)
    assert np.array_equal((v * (1 / 255)).astype(np.float32), v.astype(np.float32) / np.float32(255))
    count = 0
    for case, pixels, mean, std in cases:
        for cfg, size, crop in CONFIGS:
            if cfg == "s64c60" and case == "gradient80x120":
                continue
            for filt in FILTERS:
                for convention in ("hf", "tv"):
                    save(f"{case}_{cfg}_{filt}_{convention}", preprocess(pixels, size, crop, filt, mean, std, convention))
                    count += 1
    for case, cfg, size, crop in BOTH_AXES:
        pixels, mean, std = next((p, m, sd) for c, p, m, sd in cases if c == case)
        out_w, out_h = resized_size(pixels.shape[1], pixels.shape[0], size)
        assert (out_h - crop) % 4 == 3 and (out_w - crop) % 4 == 3, f"{case} {cfg}: the crop conventions must differ on both axes"
        for filt in FILTERS:
            for convention in ("hf", "tv"):
                save(f"{case}_{cfg}_{filt}_{convention}", preprocess(pixels, size, crop, filt, mean, std, convention))
                count += 1
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f.startswith("image_"))
    print(f"image vectors: {len(files)} images, {count} preprocessing outputs, {total} bytes")


if __name__ == "__main__":
    main()
