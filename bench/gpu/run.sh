#!/usr/bin/env bash
# The CUDA path on a lent GPU (never run yet: no GPU has been lent to the sessions that wrote it).
# Here, on a machine with the .NET SDK:   bench/gpu/run.sh publish   -> bench/gpu/out/ (self-contained)
# There, on the GPU machine (no SDK):     bench/gpu/out/run.sh       -> parity on CUDA, then timings
# The GPU machine needs the NVIDIA driver and, for the peer, python3 with a CUDA build of PyTorch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [[ "${1:-}" == "publish" ]]; then
  root="$(cd "$here/../.." && pwd)"
  out="$here/out"
  rm -rf "$out" && mkdir -p "$out"
  dotnet publish -c Release -r linux-x64 --self-contained true "$root/src/OmniKernels.Cli" -o "$out/omni"
  dotnet build -c Release "$root/tests/OmniKernels.Tests" -o "$out/tests"
  cp "$here/run.sh" "$here/torch_peer.py" "$out/"
  echo "copy $out to the GPU machine and run $out/run.sh there (the tests need 'dotnet test' or vstest: see below)"
  exit 0
fi

export OMNI_REQUIRE_DEVICE=cuda
omni="$here/omni/omni"
"$omni" devices
# 1. Parity: every case on CUDA (GPU schedule: the device's own) and forced CPU schedule, against float64.
if command -v dotnet >/dev/null; then
  dotnet test "$here/tests/OmniKernels.Tests.dll" --filter "FullyQualifiedName~ParityTests|FullyQualifiedName~GpuScheduleParityTests"
  OMNI_SCHEDULE=cpu dotnet test "$here/tests/OmniKernels.Tests.dll" --filter "FullyQualifiedName~ParityTests"
else
  echo "dotnet not found: parity tests skipped; install the .NET 10 runtime/SDK to run them" >&2
  exit 1
fi
# 2. Our timings: the fused GEMM at 4096² (selfcheck checks it against float64, then times it).
"$omni" selfcheck --device cuda --size 4096
# 3. The peer: torch.matmul (TF32 off) at 4096², SDPA at ViT-B and Whisper shapes, on the same GPU.
python3 "$here/torch_peer.py"
