#!/usr/bin/python3
"""Writes the small seed corpus the fuzz harness starts from (tests/OmniKernels.Fuzz/seeds/TARGET).
Valid files of each reader's main variants, a few hundred bytes each: afl++ mutates from them."""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "OmniKernels.Fuzz", "seeds")
rng = np.random.default_rng(99)
for d in ("safetensors", "npy", "wav"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

s = os.path.join(out, "safetensors")
st.save(os.path.join(s, "floats.safetensors"), {"a.weight": rng.standard_normal((3, 4)).astype(np.float32),
                                                "b": rng.standard_normal(5).astype(np.float16),
                                                "c": st.float32_to_bf16_bits(rng.standard_normal(3).astype(np.float32)),
                                                "d": np.float64(1.5)}, {"format": "pt"}, {"c": "BF16"})
st.save(os.path.join(s, "ints.safetensors"), {"q.weight": rng.integers(-127, 128, (4, 3)).astype(np.int8),
                                              "q.weight_scale": np.ones((4, 1), np.float32),
                                              "e": np.zeros((0, 2), np.int32), "m": np.array([True, False]),
                                              "u": np.arange(3, dtype=np.uint8), "l": np.arange(2, dtype=np.int64),
                                              "h": np.arange(2, dtype=np.int16)})
st.save(os.path.join(s, "empty.safetensors"), {})

n = os.path.join(out, "npy")
np.save(os.path.join(n, "f32.npy"), rng.standard_normal((2, 3)).astype(np.float32))
np.save(os.path.join(n, "f64_scalar.npy"), np.float64(2.5))
np.save(os.path.join(n, "i8.npy"), np.arange(-3, 4, dtype=np.int8))
np.save(os.path.join(n, "i32_big_endian.npy"), np.arange(4, dtype=">i4").reshape(2, 2))
np.lib.format.write_array(open(os.path.join(n, "v2.npy"), "wb"), np.ones(3, np.float32), version=(2, 0))


def wav(path, channels, rate, bits, fmt, frames, extra=b""):
    block = channels * bits // 8
    data = rng.integers(0, 256, frames * block, dtype=np.uint8).tobytes()
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + extra + b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


w = os.path.join(out, "wav")
wav(os.path.join(w, "pcm16_mono.wav"), 1, 16000, 16, 1, 32)
wav(os.path.join(w, "pcm8_stereo.wav"), 2, 8000, 8, 1, 16)
wav(os.path.join(w, "pcm24.wav"), 1, 22050, 24, 1, 16, extra=b"LIST" + struct.pack("<I", 5) + b"abcde\0")
wav(os.path.join(w, "float32.wav"), 1, 16000, 32, 3, 16)
