#!/usr/bin/python3
"""PyTorch on CUDA as the peer for bench/gpu/run.sh: median times of the issue-21 target shapes."""
import torch
import torch.nn.functional as F

assert torch.cuda.is_available(), "no CUDA device: this script is for a lent GPU"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def median_ms(fn, reps=50):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


g = torch.Generator(device="cuda").manual_seed(0)
n = 4096
a = torch.rand(n, n, device="cuda", generator=g) - 0.5
b = torch.rand(n, n, device="cuda", generator=g) - 0.5
ms = median_ms(lambda: torch.matmul(a, b))
print(f"torch.matmul fp32 (TF32 off) {n}x{n}x{n}: {ms:.3f} ms, {2 * n**3 / ms / 1e9:.1f} TFLOP/s")

for name, (bsz, heads, seq, dim) in {"vit_b": (8, 12, 197, 64), "whisper_enc": (1, 8, 1500, 64)}.items():
    q, k, v = (torch.rand(bsz, heads, seq, dim, device="cuda", generator=g) - 0.5 for _ in range(3))
    ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v))
    print(f"scaled_dot_product_attention {name} b{bsz} h{heads} s{seq} d{dim}: {ms:.3f} ms, {4 * bsz * heads * seq * seq * dim / ms / 1e9:.1f} TFLOP/s")
