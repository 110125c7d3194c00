#!/usr/bin/python3
"""Write the one-node ONNX MatMul models the benchmarks run through ONNX Runtime.

Makes, in bench/models/ (relative to the repo root):
  matmul_{n}.onnx   C = A @ B, A and B both graph inputs (B as activations)
  linear_{n}.onnx   C = A @ B, B an initializer (weights baked in, as a Linear layer)
  linear_{n}_b.npy  that same B, so the benchmark feeds our kernel identical weights
for n in 512, 1024, 2048, all float32 [n, n]. Output is deterministic (fixed seeds).

And attention models, for the shapes in ATTENTION (name: batch B, heads H, sequence S, head size D):
  mha_{name}.onnx        com.microsoft MultiHeadAttention; query, key, value float32 [B, S, H*D]
  mha_{name}_mask.onnx   the same plus key_padding_mask int32 [B, S] (1 = attend, 0 = masked)
  sdpa_{name}.onnx       softmax(q @ k^T / sqrt(D)) @ v in plain ONNX ops; q, k, v float32 [B, H, S, D]
  sdpa_{name}_mask.onnx  the same plus mask_bias float32 [B, 1, 1, S] (0 = attend, -10000 = masked)
                         added to the scores before the softmax
Each has one output, "output", shaped like its query.

Run with Debian's python3-onnx:  /usr/bin/python3 tools/make_onnx_models.py
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = (512, 1024, 2048)
OPSET = 17
IR_VERSION = 8  # accepted by ONNX Runtime 1.31
OUT_DIR = Path(__file__).resolve().parent.parent / "bench" / "models"


# name: (B, H, S, D)
ATTENTION = {"vit": (8, 12, 197, 64), "whisper": (1, 8, 1500, 64)}
MS_DOMAIN = "com.microsoft"
MS_OPSET = 1
MASKED_BIAS = -10000.0  # what MultiHeadAttention adds for key_padding_mask == 0 (its mask_filter_value default)


def square(name: str, n: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])


def tensor(name: str, shape: list[int], dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def save_model(graph: onnx.GraphProto, path: Path, contrib: bool = False) -> None:
    opsets = [helper.make_opsetid("", OPSET)]
    if contrib:
        opsets.append(helper.make_opsetid(MS_DOMAIN, MS_OPSET))
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="OmniKernels tools/make_onnx_models.py",
    )
    model.ir_version = IR_VERSION
    # The checker passes com.microsoft nodes through unchecked (it knows no schema for that domain),
    # so for mha_* it checks only the graph's structure; ONNX Runtime itself checks the op.
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def mha_graph(name: str, b: int, h: int, s: int, d: int, mask: bool) -> onnx.GraphProto:
    """One MultiHeadAttention node, unpacked q/k/v in [B, S, H*D]; ORT splits the heads itself."""
    hidden = [b, s, h * d]
    inputs = [tensor("query", hidden), tensor("key", hidden), tensor("value", hidden)]
    node_inputs = ["query", "key", "value"]
    if mask:
        # "" skips the optional bias input, so the mask lands in its slot (input 4).
        inputs.append(tensor("key_padding_mask", [b, s], TensorProto.INT32))
        node_inputs += ["", "key_padding_mask"]
    node = helper.make_node(
        "MultiHeadAttention", node_inputs, ["output"], domain=MS_DOMAIN, num_heads=h
    )
    return helper.make_graph([node], name, inputs, [tensor("output", hidden)])


def sdpa_graph(name: str, b: int, h: int, s: int, d: int, mask: bool) -> onnx.GraphProto:
    """Scaled dot-product attention spelled out in standard ops, heads already split: [B, H, S, D]."""
    heads = [b, h, s, d]
    inputs = [tensor("q", heads), tensor("k", heads), tensor("v", heads)]
    scale = numpy_helper.from_array(np.array(1.0 / np.sqrt(d), dtype=np.float32), name="scale")
    nodes = [
        helper.make_node("Transpose", ["k"], ["k_t"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "k_t"], ["qk"]),
        helper.make_node("Mul", ["qk", "scale"], ["scores"]),
    ]
    if mask:
        inputs.append(tensor("mask_bias", [b, 1, 1, s]))
        nodes.append(helper.make_node("Add", ["scores", "mask_bias"], ["masked_scores"]))
    nodes += [
        helper.make_node("Softmax", [nodes[-1].output[0]], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["output"]),
    ]
    return helper.make_graph(nodes, name, inputs, [tensor("output", heads)], initializer=[scale])


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for n in SIZES:
        node = helper.make_node("MatMul", ["A", "B"], ["C"])

        graph = helper.make_graph(
            [node], f"matmul_{n}", [square("A", n), square("B", n)], [square("C", n)]
        )
        save_model(graph, OUT_DIR / f"matmul_{n}.onnx")

        b = np.random.default_rng(n).standard_normal((n, n), dtype=np.float32)
        graph = helper.make_graph(
            [node],
            f"linear_{n}",
            [square("A", n)],
            [square("C", n)],
            initializer=[numpy_helper.from_array(b, name="B")],
        )
        save_model(graph, OUT_DIR / f"linear_{n}.onnx")

        npy = OUT_DIR / f"linear_{n}_b.npy"
        np.save(npy, np.ascontiguousarray(b))
        print(f"wrote {npy} ({npy.stat().st_size} bytes)")

    for name, (b, h, s, d) in ATTENTION.items():
        for mask in (False, True):
            suffix = "_mask" if mask else ""
            save_model(mha_graph(f"mha_{name}{suffix}", b, h, s, d, mask),
                       OUT_DIR / f"mha_{name}{suffix}.onnx", contrib=True)
            save_model(sdpa_graph(f"sdpa_{name}{suffix}", b, h, s, d, mask),
                       OUT_DIR / f"sdpa_{name}{suffix}.onnx")


if __name__ == "__main__":
    main()
