#!/usr/bin/python3
"""A corpus of malformed and hostile image files for the decoder's error tests, with Pillow and NumPy.

Run with Debian's python3-pil (9.4) and python3-numpy:  /usr/bin/python3 tools/make_hostile_images.py
Writes tests/OmniKernels.Tests/vectors/images/hostile_* (about 200 kB in all). Each file has one defect,
named in its file name; ImageHostileTests asserts the reason each one is rejected for.

  hostile_truncated.png      a valid 64x64 RGB PNG cut in the middle of its IDAT
  hostile_truncated.jpg      a valid 64x64 JPEG cut in the middle of its scan
  hostile_wrong_magic.png    text named .png
  hostile_huge_dims.png      a valid PNG whose IHDR (CRC fixed) is patched to claim 100000 x 100000
  hostile_bomb.png           a real 1-bit 12000 x 12000 PNG of zeros: ~18 MB of pixels (144 M pixels,
                             576 MB as RGBA) deflated to ~20 kB; within the per-side limit, over the total
  hostile_frames.gif         a 2x2 GIF with 3000 frames (two colours, alternating)
  hostile_image.bmp          a valid BMP: the format is not enabled (ImageSharp 2.1.13's BMP decoder)
  hostile_image.tiff         a valid TIFF: the format is not enabled (GHSA-wmxv-xphr-5c9g)
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors", "images")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def patch_ihdr(png, width, height):
    """The PNG with IHDR's width and height replaced and its CRC recomputed (IHDR is the first chunk)."""
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + png[24:29]
    return png[:8] + png_chunk(b"IHDR", ihdr) + png[33:]


def bomb_png(side):
    """A 1-bit grayscale PNG of zeros; each row is a filter byte and side/8 zero bytes."""
    row = b"\0" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def many_frames_gif(count):
    frames = [Image.new("P", (2, 2), i % 2) for i in range(count)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=10, loop=0)
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).n_frames == count
    return data


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261202)
    photo = Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8), "RGB")
    png = encode(photo, "PNG")
    jpg = encode(photo, "JPEG", quality=90)
    idat = png.index(b"IDAT")
    scan = jpg.index(b"\xff\xda")
    files = {
        "truncated.png": png[: idat + (len(png) - idat) // 2],
        "truncated.jpg": jpg[: scan + (len(jpg) - scan) // 2],
        "wrong_magic.png": b"this is a text file, not a PNG\n",
        "huge_dims.png": patch_ihdr(png, 100000, 100000),
        "bomb.png": bomb_png(12000),
        "frames.gif": many_frames_gif(3000),
        "image.bmp": encode(photo, "BMP"),
        "image.tiff": encode(photo, "TIFF"),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, f"hostile_{name}"), "wb") as f:
            f.write(data)
    print(", ".join(f"{n}: {len(d)} B" for n, d in files.items()))


if __name__ == "__main__":
    main()
