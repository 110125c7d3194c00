#!/usr/bin/python3
"""Test vectors for patch embedding, from torch.nn.functional.conv2d plus HF CLIP's class token and positions.

Run with Debian's python3-torch:  /usr/bin/python3 tools/make_patch_vectors.py
Writes tests/OmniKernels.Tests/vectors/patch_<name>.npy: float32 image [2, 3, 37, 35] (not a whole
number of patches: Conv2d drops the remainder), weight [64, 3, 8, 8], bias [64], cls [64],
pos [1 + 16, 64], and `expected` [2, 17, 64] in float64, computed by torch from those float32 values.
"""
import os
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2024)
    f32 = lambda *shape: rng.uniform(-1, 1, size=shape).astype(np.float32)
    image, weight, bias = f32(2, 3, 37, 35), f32(64, 3, 8, 8), f32(64)
    patches = (37 // 8) * (35 // 8)
    cls, pos = f32(64), f32(1 + patches, 64)

    t = lambda a: torch.from_numpy(a.astype(np.float64))
    conv = torch.nn.functional.conv2d(t(image), t(weight), t(bias), stride=8)  # [B, D, gh, gw]
    tokens = conv.flatten(2).transpose(1, 2)  # [B, N, D], patches in row-major order
    tokens = torch.cat([t(cls).expand(image.shape[0], 1, -1), tokens], dim=1) + t(pos)

    for name, array in [("image", image), ("weight", weight), ("bias", bias), ("cls", cls), ("pos", pos), ("expected", tokens.numpy())]:
        np.save(os.path.join(OUT, f"patch_{name}.npy"), np.ascontiguousarray(array))
    print(f"patch vectors: image {image.shape}, weight {weight.shape}, tokens {tuple(tokens.shape)}")


if __name__ == "__main__":
    main()
