#!/usr/bin/python3
"""Times torchaudio 0.13's transforms.MFCC() (or Whisper's log-mel) on a batch of clips: the peer of the front-end benchmark.

Run by bench/OmniKernels.Bench after its front-end benchmarks (Debian: python3-torchaudio, libopenblas0-openmp):
    /usr/bin/python3 tools/bench_torchaudio_mfcc.py CLIPS.npy THREADS [mfcc|whisper]
CLIPS.npy is float32 [clips, samples] at 16 kHz (written by the benchmark, the same data it times). whisper is
transforms.MelSpectrogram with Whisper's settings (n_fft 400, hop 160, 80 Slaney mels, Slaney norm) followed by
Whisper's log10, clamp to each clip's max - 8 and (x + 4) / 4.
Prints one line: "torchaudio_KIND threads=T clips=C seconds_of_audio=S median_ms=M real_time_factor=R".
"""
import sys
import time

import numpy as np
import torch
import torchaudio


def main():
    clips = torch.from_numpy(np.load(sys.argv[1]))
    threads = int(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "mfcc"
    torch.set_num_threads(threads)
    if kind == "mfcc":
        run = torchaudio.transforms.MFCC()
    elif kind == "whisper":
        mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=80, norm="slaney",
                                                   mel_scale="slaney")

        def run(x):
            log = torch.clamp(mel(x)[..., :-1], min=1e-10).log10()
            log = torch.maximum(log, log.amax(dim=(-2, -1), keepdim=True) - 8.0)
            return (log + 4.0) / 4.0
    else:
        raise SystemExit(f"bench_torchaudio_mfcc: unknown kind {kind!r} (mfcc or whisper)")
    with torch.no_grad():
        for _ in range(5):  # warm-up
            run(clips)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            run(clips)
            times.append(time.perf_counter() - t0)
    median = sorted(times)[len(times) // 2]
    seconds = clips.shape[0] * clips.shape[1] / 16000
    print(f"torchaudio_{kind} threads={threads} clips={clips.shape[0]} seconds_of_audio={seconds:g} "
          f"median_ms={median * 1e3:.3f} real_time_factor={seconds / median:.0f} torchaudio={torchaudio.__version__}")


if __name__ == "__main__":
    main()
