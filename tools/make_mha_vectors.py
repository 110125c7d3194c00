#!/usr/bin/python3
"""Test vectors for the multi-head attention block, from PyTorch's nn.MultiheadAttention in float64.

Run from anywhere with Debian's python3-torch:  /usr/bin/python3 tools/make_mha_vectors.py
Writes tests/OmniKernels.Tests/vectors/mha_<case>_<name>.npy: the float32 inputs and weights the
C# test feeds the block, and `expected` (float64) computed by torch from those same float32 values.
"""
import os
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")

# case: (batch, seq_q, seq_kv or None for self-attention, embed, heads, lengths or None, causal)
CASES = {
    "self": (2, 13, None, 48, 3, None, False),
    "self_masked_causal": (3, 11, None, 32, 2, [11, 4, 9], True),
    "cross": (2, 7, 19, 64, 4, [19, 5], False),
}


def save(case, name, array):
    np.save(os.path.join(OUT, f"mha_{case}_{name}.npy"), np.ascontiguousarray(array))


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (case, (b, sq, skv, e, h, lengths, causal)) in enumerate(CASES.items()):
        rng = np.random.default_rng(100 + i)
        f32 = lambda *shape: rng.uniform(-1, 1, size=shape).astype(np.float32)
        x = f32(b, sq, e)
        kv = f32(b, skv, e) if skv else None
        w_in, b_in = f32(3 * e, e) * 0.3, f32(3 * e)
        w_out, b_out = f32(e, e) * 0.3, f32(e)

        mha = torch.nn.MultiheadAttention(e, h, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.from_numpy(w_in.astype(np.float64)))
            mha.in_proj_bias.copy_(torch.from_numpy(b_in.astype(np.float64)))
            mha.out_proj.weight.copy_(torch.from_numpy(w_out.astype(np.float64)))
            mha.out_proj.bias.copy_(torch.from_numpy(b_out.astype(np.float64)))
        xq = torch.from_numpy(x.astype(np.float64))
        xkv = torch.from_numpy(kv.astype(np.float64)) if kv is not None else xq
        s_kv = xkv.shape[1]
        padding = None
        if lengths is not None:
            padding = torch.arange(s_kv)[None, :] >= torch.tensor(lengths)[:, None]
        attn_mask = torch.ones(sq, s_kv, dtype=torch.bool).triu(1) if causal else None
        with torch.no_grad():
            y, _ = mha(xq, xkv, xkv, key_padding_mask=padding, attn_mask=attn_mask, need_weights=False)

        save(case, "x", x)
        if kv is not None:
            save(case, "kv", kv)
        save(case, "in_proj_weight", w_in)
        save(case, "in_proj_bias", b_in)
        save(case, "out_proj_weight", w_out)
        save(case, "out_proj_bias", b_out)
        if lengths is not None:
            save(case, "lengths", np.array(lengths, dtype=np.int32))
        save(case, "expected", y.numpy())
        print(f"mha_{case}: x {x.shape}, heads {h}, causal {causal}, lengths {lengths}")


if __name__ == "__main__":
    main()
