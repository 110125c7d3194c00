#!/usr/bin/python3
"""Test vectors for the normalization, softmax and activation ops, from PyTorch in float64.

Run with Debian's python3-torch (1.13) and python3-numpy:  /usr/bin/python3 tools/make_op_vectors.py
Writes tests/OmniKernels.Tests/vectors/op_<case>_<input>.npy (float32 inputs, C order) and
op_<case>_expected.npy (float64), rewriting identical files on every run (fixed seeds).

They check the float64 reference (src/OmniKernels.Reference) against an implementation it shares nothing
with, and the device kernels against the same numbers (tests/OmniKernels.Tests/OpVectorTests.cs):
  layernorm_7x45      torch.nn.functional.layer_norm, eps = float32(1e-5) (the op's default, as the op passes it)
  rmsnorm_5x33        x / sqrt(mean(x^2) + eps) * gamma, eps = float32(1e-6) (torch 1.13 has no rms_norm)
  softmax_9x77        torch.softmax(0.125 * x); row 1 all -inf, row 2 every third column -inf. A row with
                      nothing visible gives 0 by the op's convention (torch gives NaN), so it is set to 0 here
  gelu_7x143          torch.nn.functional.gelu (erf)
  gelu_tanh_7x143     torch.nn.functional.gelu(approximate="tanh")
  quick_gelu_7x143    x * torch.sigmoid(1.702 * x) (Hugging Face's QuickGELUActivation)
  silu_7x143          torch.nn.functional.silu
  erfc_x, erfc_expected  Python's math.erfc (the C library's) on a grid over [-7, 7] and random points: the
                      reference's own erfc, which its GELU rests on, against an independent one
"""
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")


def save(case, name, array):
    np.save(os.path.join(OUT, f"op_{case}_{name}.npy"), np.ascontiguousarray(array))


def t64(a):
    return torch.from_numpy(a.astype(np.float64))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240622)
    count = 0

    x = rng.uniform(-3, 3, (7, 45)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 45).astype(np.float32)
    beta = rng.uniform(-0.5, 0.5, 45).astype(np.float32)
    eps = float(np.float32(1e-5))
    y = torch.nn.functional.layer_norm(t64(x), (45,), t64(gamma), t64(beta), eps).numpy()
    for name, a in (("x", x), ("gamma", gamma), ("beta", beta), ("expected", y)):
        save("layernorm_7x45", name, a)
    count += 1

    x = rng.uniform(-2, 2, (5, 33)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 33).astype(np.float32)
    eps = float(np.float32(1e-6))
    xt = t64(x)
    y = (xt / torch.sqrt((xt * xt).mean(-1, keepdim=True) + eps) * t64(gamma)).numpy()
    for name, a in (("x", x), ("gamma", gamma), ("expected", y)):
        save("rmsnorm_5x33", name, a)
    count += 1

    x = rng.uniform(-40, 40, (9, 77)).astype(np.float32)
    x[1, :] = -np.inf
    x[2, ::3] = -np.inf
    y = torch.softmax(0.125 * t64(x), dim=-1).numpy()
    y[1, :] = 0.0
    assert np.isfinite(y).all()
    save("softmax_9x77", "x", x)
    save("softmax_9x77", "expected", y)
    count += 1

    x = rng.uniform(-9, 9, (7, 143)).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 1e-7, -1e-7, 20.0]
    acts = {
        "gelu": lambda v: torch.nn.functional.gelu(v),
        "gelu_tanh": lambda v: torch.nn.functional.gelu(v, approximate="tanh"),
        "quick_gelu": lambda v: v * torch.sigmoid(1.702 * v),
        "silu": lambda v: torch.nn.functional.silu(v),
    }
    for name, fn in acts.items():
        save(f"{name}_7x143", "x", x)
        save(f"{name}_7x143", "expected", fn(t64(x)).numpy())
        count += 1
    x = np.concatenate([np.arange(-700, 701) / 100.0, rng.uniform(-7, 7, 500), [2.5 - 1e-9, 2.5, 2.5 + 1e-9]])
    np.save(os.path.join(OUT, "op_erfc_x.npy"), x)
    np.save(os.path.join(OUT, "op_erfc_expected.npy"), np.array([math.erfc(v) for v in x]))
    print(f"op vectors: {count} cases, torch {torch.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
