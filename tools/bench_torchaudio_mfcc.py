#!/usr/bin/python3
"""Times torchaudio 0.13's transforms.MFCC() on a batch of clips: the peer of the MFCC benchmark.

Run by bench/OmniKernels.Bench after its MFCC benchmark (Debian: python3-torchaudio, libopenblas0-openmp):
    /usr/bin/python3 tools/bench_torchaudio_mfcc.py CLIPS.npy THREADS
CLIPS.npy is float32 [clips, samples] at 16 kHz (written by the benchmark, the same data it times).
Prints one line: "torchaudio_mfcc threads=T clips=C seconds_of_audio=S median_ms=M real_time_factor=R".
"""
import sys
import time

import numpy as np
import torch
import torchaudio


def main():
    clips = torch.from_numpy(np.load(sys.argv[1]))
    threads = int(sys.argv[2])
    torch.set_num_threads(threads)
    mfcc = torchaudio.transforms.MFCC()
    with torch.no_grad():
        for _ in range(5):  # warm-up
            mfcc(clips)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            mfcc(clips)
            times.append(time.perf_counter() - t0)
    median = sorted(times)[len(times) // 2]
    seconds = clips.shape[0] * clips.shape[1] / 16000
    print(f"torchaudio_mfcc threads={threads} clips={clips.shape[0]} seconds_of_audio={seconds:g} "
          f"median_ms={median * 1e3:.3f} real_time_factor={seconds / median:.0f} torchaudio={torchaudio.__version__}")


if __name__ == "__main__":
    main()
