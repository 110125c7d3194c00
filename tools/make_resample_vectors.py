#!/usr/bin/python3
"""Test vectors for OmniKernels.Audio.Resampler, from torchaudio.functional.resample (torchaudio 0.13).

Run from anywhere with Debian's python3-torchaudio:  /usr/bin/python3 tools/make_resample_vectors.py
Writes, in tests/OmniKernels.Tests/vectors/ (flat, so the test project's vectors/*.npy glob copies them):
  resample_<case>_input.npy     float32 [n]: the mono signal the C# test feeds the resampler
  resample_<case>_expected.npy  float64 [m]: torchaudio.functional.resample(x, from, to) with its defaults
                                (sinc_interpolation, lowpass_filter_width 6, rolloff 0.99), run in float64
                                on that same float32 input cast to float64 (so torchaudio builds its
                                kernel in float64 too; with a float32 waveform it would build it in float32)
The rates of each case are in CASES below and repeated in tests/OmniKernels.Tests/ResamplerTests.cs.
Output is deterministic (fixed seeds).
"""
import os

import numpy as np
import torch
import torchaudio.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")

# case: (from rate, to rate, number of input samples)
CASES = {
    "44100_16000": (44100, 16000, 52920),  # 1.2 s
    "22050_16000": (22050, 16000, 13230),  # 0.6 s
    "48000_16000": (48000, 16000, 28800),  # 0.6 s
    "8000_16000": (8000, 16000, 4800),  # 0.6 s, upsampling
    "16000_16000": (16000, 16000, 9600),  # 0.6 s, identity
    "11025_16000": (11025, 16000, 6615),  # 0.6 s, reduces to 441 -> 640
    "16000_22050": (16000, 22050, 9600),  # 0.6 s, reduces to 320 -> 441
    "short_44100_16000": (44100, 16000, 37),  # shorter than the filter
    "short_8000_22050": (8000, 22050, 5),  # a handful of samples, upsampling by a ratio of 160 -> 441
}


def signal(rate, n, seed):
    """Sines below and above 8 kHz (the 16 kHz Nyquist, so the anti-aliasing filter matters) plus seeded noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = np.zeros(n)
    for amp, hz in ((0.4, 440.0), (0.2, 3150.0), (0.1, 7300.0), (0.1, 9500.0), (0.05, 15000.0)):
        if hz < rate / 2:
            x += amp * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    x += 0.05 * rng.standard_normal(n)
    return x.astype(np.float32)


def save(case, name, array):
    np.save(os.path.join(OUT, f"resample_{case}_{name}.npy"), np.ascontiguousarray(array))


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (case, (src, dst, n)) in enumerate(CASES.items()):
        x = signal(src, n, 1000 + i)
        y = F.resample(torch.from_numpy(x.astype(np.float64)), src, dst).numpy()
        assert y.dtype == np.float64
        save(case, "input", x)
        save(case, "expected", y)
        print(f"{case}: {n} -> {y.shape[0]} samples")


if __name__ == "__main__":
    main()
