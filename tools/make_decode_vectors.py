#!/usr/bin/python3
"""Decode test vectors for the formats and features the image decoder supports, from Pillow 9.4 and NumPy.

Run with Debian's python3-pil and python3-numpy:  /usr/bin/python3 tools/make_decode_vectors.py
Writes tests/OmniKernels.Tests/vectors/images/decode_<name>.<ext> (the encoded file) and
decode_<name>_rgb.npy (Pillow's pixels, uint8 [H, W, 3] stored as int8, alpha composited on white as flatten() in
make_image_vectors.py does; decode_<name>_rgba.npy as well where the file has alpha), about 60 kB:

  exif6.jpg, exif3.jpg, exif8.jpg  a 24x16 4:4:4 JPEG with EXIF orientation 6, 3 and 8; expected pixels are
                                   ImageOps.exif_transpose's (16x24, 24x16, 16x24)
  progressive.jpg                  progressive JPEG
  cmyk.jpg                         CMYK JPEG (Pillow writes Adobe-inverted CMYK)
  rgb16.png                        16-bit RGB PNG (hand-written); Pillow keeps the high byte
  gray16.png                       16-bit gray PNG; expected is the high byte (Pillow's I;16 -> L clamps, so
                                   it is not the reference), computed here from the written samples
  palette_alpha.png                palette PNG with a tRNS alpha per entry
  lossless_alpha.webp              lossless WebP with alpha
  lossy.webp                       lossy WebP (quality 90)
  anim.gif                         a 6-frame 16x12 GIF; decode_anim_frames.npy is [6, 12, 16, 3], frame i as
                                   Pillow's seek(i).convert("RGB")
  anim.mkv                         those frames encoded losslessly by Debian's ffmpeg (FFV1, RGB), so that
                                   decoding through ffmpeg must give decode_anim_frames.npy exactly
"""
import io
import os
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image, ImageOps

from make_image_vectors import flatten

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors", "images")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16(samples, color_type):
    """A 16-bit PNG of uint16 samples [H, W, C], filter 0 on every row."""
    h, w = samples.shape[:2]
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def save(name, pixels):
    """uint8 pixels stored as int8 (the project's NpyFile reads int8, not uint8)."""
    np.save(os.path.join(OUT, f"decode_{name}.npy"), np.ascontiguousarray(pixels, dtype=np.uint8).view(np.int8))


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def smooth(w, h, rng):
    """A smooth colour image (JPEG and lossy WebP keep it well) with a little noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 255 // (w + h - 2)], axis=-1)
    return np.clip(base + rng.integers(-8, 9, size=base.shape), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261203)
    files, expected = {}, {}

    photo = Image.fromarray(smooth(24, 16, rng), "RGB")
    for orientation in (6, 3, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encode(photo, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        files[f"exif{orientation}.jpg"] = data
        expected[f"exif{orientation}"] = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")

    files["progressive.jpg"] = encode(Image.fromarray(smooth(40, 30, rng), "RGB"), "JPEG", quality=90, progressive=True)
    cmyk = Image.fromarray(rng.integers(0, 256, size=(1, 1, 4), dtype=np.uint8).repeat(20, 0).repeat(28, 1), "CMYK")
    cmyk = Image.fromarray(np.clip(np.array(cmyk).astype(int) + smooth(28, 20, rng)[:, :, [0, 1, 2, 0]] // 4, 0, 255).astype(np.uint8), "CMYK")
    files["cmyk.jpg"] = encode(cmyk, "JPEG", quality=95)

    rgb16 = rng.integers(0, 65536, size=(9, 13, 3), dtype=np.uint16)
    files["rgb16.png"] = png16(rgb16, 2)
    gray16 = rng.integers(0, 65536, size=(7, 11, 1), dtype=np.uint16)
    files["gray16.png"] = png16(gray16, 0)
    expected["gray16"] = np.repeat((gray16 >> 8).astype(np.uint8), 3, axis=2)

    pal = Image.fromarray(rng.integers(0, 8, size=(10, 15), dtype=np.uint8), "P")
    pal.putpalette(rng.integers(0, 256, size=24, dtype=np.uint8).tobytes())
    files["palette_alpha.png"] = encode(pal, "PNG", transparency=bytes([0, 64, 128, 255, 200, 10, 255, 90]))

    rgba = np.concatenate([smooth(18, 14, rng), rng.integers(0, 256, size=(14, 18, 1), dtype=np.uint8)], axis=2)
    files["lossless_alpha.webp"] = encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True)
    files["lossy.webp"] = encode(Image.fromarray(smooth(32, 24, rng), "RGB"), "WEBP", quality=90)

    palette = rng.integers(0, 256, size=48, dtype=np.uint8).tobytes()
    frames = []
    for _ in range(6):
        f = Image.fromarray(rng.integers(0, 16, size=(12, 16), dtype=np.uint8), "P")
        f.putpalette(palette)
        frames.append(f)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    files["anim.gif"] = buf.getvalue()
    gif = Image.open(io.BytesIO(files["anim.gif"]))
    assert gif.n_frames == 6
    decoded = []
    for i in range(6):
        gif.seek(i)
        decoded.append(np.array(gif.convert("RGB")))
    save("anim_frames", np.stack(decoded))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "16x12", "-r", "25", "-i", "-",
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", os.path.join(OUT, "decode_anim.mkv")],
                   input=np.stack(decoded).tobytes(), check=True)

    for name, data in files.items():
        with open(os.path.join(OUT, f"decode_{name}"), "wb") as f:
            f.write(data)
        stem = name.rsplit(".", 1)[0]
        if name == "anim.gif":
            continue
        im = Image.open(io.BytesIO(data))
        rgb = expected.get(stem)
        rgb = np.array(flatten(im, "RGB")) if rgb is None else np.array(rgb)
        save(f"{stem}_rgb", rgb.reshape(rgb.shape[0], rgb.shape[1], 3))
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            save(f"{stem}_rgba", np.array(im.convert("RGBA")))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f.startswith("decode_"))
    print(f"decode vectors: {len(files)} files, {total} bytes")


if __name__ == "__main__":
    main()
