#!/usr/bin/python3
"""Test clips and MFCC / log-mel reference vectors for the audio front end, from torchaudio 0.13.

Run with Debian's packages (needs: python3-torch python3-torchaudio python3-soundfile espeak-ng sox):
    /usr/bin/python3 tools/make_audio_vectors.py
Output is deterministic (fixed seeds, single-threaded torch, `sox -R -D`); rerunning rewrites identical files.

Writes tests/OmniKernels.Tests/vectors/audio/:
  WAV clips (synthetic ones are quantised here and written with the `soundfile` module; the speech clips come
  from espeak-ng, converted with sox):
    speech_16k.wav          espeak-ng (22050 Hz) -> `sox -R -D tmp.wav -r 16000 -b 16 -c 1 speech_16k.wav`, mono PCM16
    tones_16k.wav           1.3 s, 0.3 sin(440 Hz) + 0.2 sin(1000 Hz), mono float32 (WAVE_FORMAT_IEEE_FLOAT, with
                            "fact" and zeroed "PAD " chunks before "data", as libsndfile writes it without PEAK)
    noise_16k.wav           0.9 s, default_rng(5).uniform(-0.5, 0.5), mono PCM16
    quiet_16k.wav           0.5 s, default_rng(6).uniform(-1e-4, 1e-4), mono PCM16 (only a few LSBs)
    stereo_44k.wav          1.1 s at 44100 Hz, PCM24; left 0.4 sin(300 Hz), right espeak-ng speech (sox to 44.1 kHz)
    holdout_speech_22k.wav  espeak-ng output kept at 22050 Hz, mono PCM16 (a different sentence)
    holdout_mix_16k.wav     0.7 s, 0.25 sin(523.25 Hz) + 0.15 sin(1500 Hz) + default_rng(11) noise (+-0.1), PCM16
  Synthetic clips are written with soundfile (libsndfile, plain 16-byte WAVE_FORMAT_PCM / 0x0003 fmt chunks, also
  for the 24-bit stereo clip); the speech clips are espeak-ng / sox output (44-byte canonical headers).
  PCM samples are quantised as round(x * 2^(bits-1)) clipped to the integer range, so reading them back as
  int / 2^(bits-1) (what torchaudio.load(normalize=True) does) gives x to within half an LSB.
  Per clip, computed on the waveform torchaudio.load(path) (backend "soundfile", see main) returns, averaged over
  channels (mean(dim=0)), float32:
    <clip>_resampled16k.npy  float32 [n]   only for clips not at 16 kHz: torchaudio.functional.resample(x, sr, 16000)
                                           with its defaults (0.13: resampling_method "sinc_interpolation" = Hann
                                           window, lowpass_filter_width 6, rolloff 0.99), applied to the float32 mono
                                           waveform (so torchaudio builds its kernel in float32)
  and on that 16 kHz float32 mono waveform cast to float64, with transforms built in float64 (float64 is made the
  default dtype while building them, so the Hann window, mel filters and DCT matrix are computed in float64, not
  rounded from float32):
    <clip>_mfcc_default.npy    float64 [40, frames]  torchaudio.transforms.MFCC() (all defaults)
    <clip>_mfcc_small.npy      float64 [20, frames]  MFCC(n_mfcc=20, log_mels=True, melkwargs={n_mels 40, hop 160})
    <clip>_mfcc_slaney.npy     float64 [13, frames]  MFCC(n_mfcc=13, melkwargs={n_mels 64, mel_scale/norm "slaney",
                                                     f_min 20, f_max 7600, n_fft 512, win_length 400, hop 160})
    <clip>_logmel_whisper.npy  float64 [80, frames]  openai-whisper's log_mel_spectrogram (padding=0), written out
                                                     with torch: see omni_torch.whisper_log_mel
  README.md                  a short description, with the torch / torchaudio versions used.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
from soundfile import _ffi, _snd  # private, for sf_command (see make_clips.write)
import torch
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omni_torch import whisper_log_mel, whisper_mel_filters  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors", "audio")
SR = 16000
SPEECH_TEXT = "Omni kernels turn sound into features."
HOLDOUT_TEXT = "A quick brown fox jumps over the lazy dog, twice."
STEREO_TEXT = "Left and right."

MFCC_CONFIGS = {
    "mfcc_default": {},
    "mfcc_small": {"n_mfcc": 20, "log_mels": True, "melkwargs": {"n_mels": 40, "hop_length": 160}},
    "mfcc_slaney": {"n_mfcc": 13, "melkwargs": {"n_mels": 64, "mel_scale": "slaney", "norm": "slaney", "f_min": 20.0,
                                                "f_max": 7600.0, "n_fft": 512, "win_length": 400, "hop_length": 160}},
}


# ---- clips ------------------------------------------------------------------------------------------------

def espeak(text, path):
    subprocess.run(["espeak-ng", "-w", path, text], check=True)


def sox(*args):
    # -R: repeatable (fixed seeds), -D: no dither, so the conversion is deterministic.
    subprocess.run(["sox", "-R", "-D", *args], check=True)


def quantise(x, bits):
    """float in [-1, 1) -> ints at the given depth, round(x * 2^(bits-1)) clipped; int16 for 16, int32 for 24."""
    scale = 2.0 ** (bits - 1)
    q = np.clip(np.round(np.asarray(x, np.float64) * scale), -scale, scale - 1)
    if bits == 16:
        return q.astype(np.int16)
    # libsndfile takes int32 frames for PCM_24 and keeps the top 24 bits.
    return q.astype(np.int32) << 8


def sines(n, rate, parts):
    t = np.arange(n, dtype=np.float64) / rate
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in parts)


def make_clips(tmp):
    clips = {}

    def write(name, data, rate, subtype):
        path = os.path.join(OUT, name)
        with sf.SoundFile(path, "w", rate, 1 if data.ndim == 1 else data.shape[1], subtype=subtype, format="WAV") as f:
            # libsndfile adds a PEAK chunk (with a time stamp) to float WAVs; turn it off so the output is
            # deterministic (SFC_SET_ADD_PEAK_CHUNK = 0x1050, SF_FALSE). libsndfile then writes a zeroed
            # "PAD " chunk in its place, after a "fact" chunk: both are chunks a WAV reader must skip.
            _snd.sf_command(f._file, 0x1050, _ffi.NULL, 0)
            f.write(data)
        with open(path, "rb") as f:
            assert b"PEAK" not in f.read(256), path
        clips[name] = path

    raw = os.path.join(tmp, "speech_22k.wav")
    espeak(SPEECH_TEXT, raw)
    path = os.path.join(OUT, "speech_16k.wav")
    sox(raw, "-r", str(SR), "-b", "16", "-c", "1", path)
    clips["speech_16k.wav"] = path

    n = round(1.3 * SR)
    write("tones_16k.wav", sines(n, SR, [(440.0, 0.3), (1000.0, 0.2)]).astype(np.float32), SR, "FLOAT")

    n = round(0.9 * SR)
    write("noise_16k.wav", quantise(np.random.default_rng(5).uniform(-0.5, 0.5, n), 16), SR, "PCM_16")

    n = round(0.5 * SR)
    write("quiet_16k.wav", quantise(np.random.default_rng(6).uniform(-1e-4, 1e-4, n), 16), SR, "PCM_16")

    rate, n = 44100, round(1.1 * 44100)
    raw = os.path.join(tmp, "stereo_speech_22k.wav")
    espeak(STEREO_TEXT, raw)
    up = os.path.join(tmp, "stereo_speech_44k.wav")
    sox(raw, "-r", str(rate), "-b", "16", "-c", "1", up)
    right, r = sf.read(up, dtype="float64")
    assert r == rate
    right = np.pad(right, (0, max(0, n - len(right))))[:n]
    left = sines(n, rate, [(300.0, 0.4)])
    write("stereo_44k.wav", quantise(np.stack([left, right], axis=1), 24), rate, "PCM_24")

    path = os.path.join(OUT, "holdout_speech_22k.wav")
    espeak(HOLDOUT_TEXT, path)  # espeak-ng writes mono PCM16 at 22050 Hz; kept as it is
    clips["holdout_speech_22k.wav"] = path

    n = round(0.7 * SR)
    mix = sines(n, SR, [(523.25, 0.25), (1500.0, 0.15)]) + np.random.default_rng(11).uniform(-0.1, 0.1, n)
    write("holdout_mix_16k.wav", quantise(mix, 16), SR, "PCM_16")
    return clips


# ---- features ---------------------------------------------------------------------------------------------

def load_mono16k(path):
    """What the C# reader does: torchaudio.load (normalize=True) -> mean over channels -> float32 -> resample."""
    wave, rate = torchaudio.load(path, normalize=True)  # [channels, n], float32, PCM scaled by 1 / 2^(bits-1)
    mono = wave.mean(dim=0).to(torch.float32)
    resampled = rate != SR
    if resampled:
        mono = torchaudio.functional.resample(mono, rate, SR)
    return mono, rate, resampled


def build_transforms(dtype):
    """The MFCC transforms with window / filters / DCT computed in `dtype` (the default dtype while building)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return {name: torchaudio.transforms.MFCC(sample_rate=SR, **cfg).to(dtype) for name, cfg in MFCC_CONFIGS.items()}
    finally:
        torch.set_default_dtype(old)


def librosa_mel_numpy(sr=16000, n_fft=400, n_mels=80, fmin=0.0, fmax=8000.0):
    """librosa.filters.mel(htk=False, norm='slaney') written out in numpy float64, to check melscale_fbanks."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
        mels = f / f_sp
        return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
        min_log_mel = min_log_hz / f_sp
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights  # [n_mels, n_freqs]


# ---- main -------------------------------------------------------------------------------------------------

def main():
    # torchaudio 0.13 defaults to the sox_io backend, which passes float WAVs through SoX's int32 samples: the
    # float32 clip comes back up to 2 ulp off (3e-8). The soundfile backend returns float WAVs bit-exact and PCM as
    # int / 2^(bits-1), exactly what sox_io returns for PCM, so it is what a C# reader should reproduce.
    torchaudio.set_audio_backend("soundfile")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):  # start clean so stale files from older runs do not linger
        if f.endswith((".wav", ".npy")):
            os.remove(os.path.join(OUT, f))

    tmp = tempfile.mkdtemp(prefix="audio_vectors_")
    try:
        clips = make_clips(tmp)
    finally:
        shutil.rmtree(tmp)

    # Check the Whisper filters against librosa's formula (librosa itself is not needed).
    fb64 = whisper_mel_filters()
    ref = librosa_mel_numpy().T
    err = np.abs(fb64.numpy() - ref).max() / np.abs(ref).max()
    assert err < 1e-12, f"melscale_fbanks differs from librosa's slaney mel filters: {err}"
    print(f"whisper filters: melscale_fbanks(slaney) vs librosa formula, max rel diff {err:.2e}")

    transforms64 = build_transforms(torch.float64)
    written = []
    for name, path in clips.items():
        stem = name[:-4]
        info = sf.info(path)
        mono, rate, resampled = load_mono16k(path)
        if resampled:
            np.save(os.path.join(OUT, f"{stem}_resampled16k.npy"), mono.numpy().astype(np.float32))
            written.append(f"{stem}_resampled16k.npy")
        x = mono.to(torch.float64)
        with torch.no_grad():
            feats = {k: t(x) for k, t in transforms64.items()}
            feats["logmel_whisper"] = whisper_log_mel(x, fb64)
        for k, v in feats.items():
            a = v.numpy().astype(np.float64)
            assert np.isfinite(a).all() and a.std() > 0, (name, k)
            np.save(os.path.join(OUT, f"{stem}_{k}.npy"), np.ascontiguousarray(a))
            written.append(f"{stem}_{k}.npy")
        print(f"{name}: {info.channels} ch, {rate} Hz, {info.subtype}, {info.frames} frames"
              f" -> mono16k {mono.numel()} samples; " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.items()))

    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(
            "# Audio test vectors\n\n"
            "WAV clips and torchaudio reference features made by `tools/make_audio_vectors.py` "
            "(run `/usr/bin/python3 tools/make_audio_vectors.py`; its docstring lists every file and setting).\n"
            "`<clip>_resampled16k.npy` (float32) is the mono waveform torchaudio.functional.resample gives for clips "
            "not at 16 kHz; `<clip>_mfcc_{default,small,slaney}.npy` and `<clip>_logmel_whisper.npy` (float64, "
            "[coefficients or mels, frames]) are computed in float64 on the float32 mono 16 kHz waveform.\n"
            f"Generated with torch {torch.__version__}, torchaudio {torchaudio.__version__} "
            f"(audio backend {torchaudio.get_audio_backend()}), espeak-ng and SoX from Debian 12, numpy {np.__version__}.\n"
            "The `holdout_*` clips are meant only for the end-to-end CLI tests.\n")

    for f in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, f)
        if f.endswith(".npy"):
            a = np.load(p)
            print(f"{f:45s} {os.path.getsize(p):8d} B  {a.dtype} {a.shape}")
        else:
            print(f"{f:45s} {os.path.getsize(p):8d} B")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes in {len(os.listdir(OUT))} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
