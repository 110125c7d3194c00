#!/usr/bin/env bash
# One set-up command for a fresh Debian 12 machine: installs the Debian packages that `omni demo`
# and `dotnet test` need and that are missing. Works as root without sudo (a container) and as a
# user with sudo. The .NET SDK itself is not a Debian package: its absence is reported, not fixed.
#   tools/setup.sh           runtime + tests: PoCL (the OpenCL CPU device), NumPy and sox (test
#                            vectors), ffmpeg (video files)
#   tools/setup.sh --tools   also what the scripts under tools/ need to rebuild the data, the model
#                            and the test vectors (PyTorch, torchaudio, espeak-ng, sentencepiece, …)
set -euo pipefail

packages=(pocl-opencl-icd ocl-icd-opencl-dev python3-numpy sox ffmpeg)
case "${1:-}" in
  "") ;;
  --tools)
    packages+=(python3-torch python3-torchaudio python3-onnx python3-soundfile python3-pil
               libopenblas0-openmp espeak-ng sentencepiece python3-sentencepiece dataset-fashion-mnist) ;;
  *) echo "setup.sh: unknown option '$1' (expected nothing or --tools)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "setup.sh: installing ${missing[*]} needs root; run it as root or install sudo" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "Debian packages: all present"
fi

if ! command -v dotnet >/dev/null; then
  echo "setup.sh: the .NET 10 SDK is not on PATH; install it (https://dot.net) and run this again" >&2
  exit 1
fi
echo ".NET SDK $(dotnet --version)"
