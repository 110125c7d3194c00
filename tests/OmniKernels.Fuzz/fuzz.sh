#!/usr/bin/env bash
# Fuzzes one reader with afl++ through SharpFuzz (docs/fuzzing.md):
#   tests/OmniKernels.Fuzz/fuzz.sh safetensors|npy|wav [SECONDS]
# Builds the harness, instruments the assembly holding the reader, then runs afl-fuzz for SECONDS
# (default 600) on the committed seeds; findings go to tests/OmniKernels.Fuzz/findings/TARGET (ignored).
set -euo pipefail
target=${1:?usage: fuzz.sh safetensors|npy|wav [SECONDS]}
seconds=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
case "$target" in
  safetensors) dll=OmniKernels.Weights.dll ;;
  npy|wav) dll=OmniKernels.dll ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
out="$here/bin/fuzz-$target"
rm -rf "$out"
dotnet publish -c Release "$here/OmniKernels.Fuzz.csproj" -o "$out" >/dev/null
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
sharpfuzz "$out/$dll"
mkdir -p "$here/findings"
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
exec afl-fuzz -V "$seconds" -t 5000 -m none -i "$here/seeds/$target" -o "$here/findings/$target" -- \
  dotnet "$out/OmniKernels.Fuzz.dll" "$target"
