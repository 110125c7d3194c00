#!/usr/bin/python3
"""MFCC vectors for the STFT sizes and dB paths the main audio vectors leave out, from torchaudio 0.13 in float64.

Run with Debian's python3-torch, python3-torchaudio and python3-soundfile:  /usr/bin/python3 tools/make_stft_vectors.py
Reads the committed tests/OmniKernels.Tests/vectors/audio/speech_16k.wav (made by tools/make_audio_vectors.py, whose
loading and float64 transform building this follows) and writes tests/OmniKernels.Tests/vectors/stft_<config>.npy,
float64 [n_mfcc, frames], rewriting identical files on every run.

The device STFT splits a frame into 4, 2 or 1 sub-sequences (AudioMatrices.Decimation: 4 when n_fft % 4 == 0 and
n_fft >= 16, else 2 when n_fft is even, else 1); the main vectors use n_fft 400 and 512 (4) only:
  stft_nfft402      n_fft 402 (2 sub-sequences of odd length 201), hop 160, 40 mels, 13 coefficients
  stft_nfft401      n_fft 401 (odd: 1), hop 160, 40 mels, 13 coefficients
  stft_nfft12       n_fft 12 (divisible by 4 but below 16: 2 of length 6), hop 6, 4 mels, 3 coefficients
  stft_nfft9        n_fft 9 (1, tiny), hop 5, 3 mels, 2 coefficients
  stft_nfft20       n_fft 20 (4 of odd length 5: the scalar combine at radix 4), hop 10, 4 mels, 3 coefficients
  stft_nfft124      n_fft 124 (4 of odd length 31: exactly one 16-bin block of the vector combine), hop 62, 20 mels, 8 coefficients
  stft_nfft200      n_fft 200 (4 of length 50: two overlapping blocks), hop 80, 40 mels, 13 coefficients
  stft_no_top_db    MFCC() defaults with its AmplitudeToDB's top_db set to None: dB without the per-clip floor
"""
import os
import sys

import numpy as np
import torch
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_audio_vectors import load_mono16k  # noqa: E402  (the same loading as the main audio vectors)

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")
SR = 16000
CONFIGS = {
    "nfft402": {"n_mfcc": 13, "melkwargs": {"n_fft": 402, "hop_length": 160, "n_mels": 40}},
    "nfft401": {"n_mfcc": 13, "melkwargs": {"n_fft": 401, "hop_length": 160, "n_mels": 40}},
    "nfft12": {"n_mfcc": 3, "melkwargs": {"n_fft": 12, "hop_length": 6, "n_mels": 4}},
    "nfft9": {"n_mfcc": 2, "melkwargs": {"n_fft": 9, "hop_length": 5, "n_mels": 3}},
    "nfft20": {"n_mfcc": 3, "melkwargs": {"n_fft": 20, "hop_length": 10, "n_mels": 4}},
    "nfft124": {"n_mfcc": 8, "melkwargs": {"n_fft": 124, "hop_length": 62, "n_mels": 20}},
    "nfft200": {"n_mfcc": 13, "melkwargs": {"n_fft": 200, "hop_length": 80, "n_mels": 40}},
    "no_top_db": {},
}


def main():
    torchaudio.set_audio_backend("soundfile")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mono, rate, _ = load_mono16k(os.path.join(VECTORS, "audio", "speech_16k.wav"))
    assert rate == SR
    x = mono.to(torch.float64)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for name, cfg in CONFIGS.items():
            mfcc = torchaudio.transforms.MFCC(sample_rate=SR, **cfg).to(torch.float64)
            if name == "no_top_db":
                mfcc.amplitude_to_DB.top_db = None
            out = mfcc(x).numpy()
            assert out.dtype == np.float64 and np.isfinite(out).all()
            np.save(os.path.join(VECTORS, f"stft_{name}.npy"), np.ascontiguousarray(out))
            print(f"stft_{name}.npy {out.shape}")
    finally:
        torch.set_default_dtype(old)
    print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}")


if __name__ == "__main__":
    main()
