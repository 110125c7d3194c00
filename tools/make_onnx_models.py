#!/usr/bin/python3
"""Write the one-node ONNX MatMul models the benchmarks run through ONNX Runtime.

Makes, in bench/generated/onnx/ (relative to the repo root; git-ignored, made by the benchmarks when
they first need it) or in the folder given by --out-dir:
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

Run with Debian's python3-onnx:  /usr/bin/python3 tools/make_onnx_models.py [--out-dir DIR]

With --int8-dir DIR it writes instead, into DIR only (the weights are too big to commit, so the
INT8 benchmark makes them when it first runs), for each Linear shape M x K x N in LINEAR_SHAPES:
  lin_{m}x{k}x{n}_fp32.onnx  y = x @ W: MatMul, input x float32 [M, K], W a float32 [K, N] initializer
  lin_{m}x{k}x{n}_int8.onnx  ONNX Runtime's dynamic quantization of that MatMul:
                             DynamicQuantizeLinear(x) -> xq uint8, x_scale, x_zp;
                             MatMulInteger(xq, Wq int8 [K, N], x_zp, Wzp int8 0) -> int32;
                             Cast to float; Mul by x_scale * W_scale (per-tensor symmetric,
                             W_scale = max|W| / 127), the pattern ORT fuses into DynamicQuantizeMatMul
  lin_{m}x{k}x{n}_w.npy      the same fp32 W transposed to [N, K] (PyTorch Linear's layout)
Both models have one input "x" and one output "y", float32 [M, N]. Files appear whole or not at
all (written to a temporary name, then renamed).

  /usr/bin/python3 tools/make_onnx_models.py --int8-dir DIR
"""

import argparse
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = (512, 1024, 2048)
OPSET = 17
IR_VERSION = 8  # accepted by ONNX Runtime 1.31
OUT_DIR = Path(__file__).resolve().parent.parent / "bench" / "generated" / "onnx"


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
    write_atomically(path, model.SerializeToString())


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


# (M, K, N) of the Linear layers the INT8 benchmark compares: one token through a ViT-B MLP
# up-projection, one token through a 4096-wide LLM projection, and a whole ViT-B/16 sequence.
LINEAR_SHAPES = ((1, 768, 3072), (1, 4096, 4096), (197, 768, 3072))
INT8_MAX = 127


def linear_name(m: int, k: int, n: int) -> str:
    return f"lin_{m}x{k}x{n}"


def linear_weight(k: int, n: int) -> np.ndarray:
    """The fp32 W [K, N] of a Linear shape, deterministic."""
    return np.random.default_rng(k * 1000 + n).standard_normal((k, n)).astype(np.float32) * 0.05


def linear_fp32_graph(name: str, m: int, w: np.ndarray) -> onnx.GraphProto:
    k, n = w.shape
    node = helper.make_node("MatMul", ["x", "W"], ["y"])
    return helper.make_graph(
        [node], name, [tensor("x", [m, k])], [tensor("y", [m, n])],
        initializer=[numpy_helper.from_array(w, name="W")],
    )


def linear_int8_graph(name: str, m: int, w: np.ndarray) -> onnx.GraphProto:
    """What onnxruntime.quantization.quantize_dynamic makes of a MatMul with a weight initializer
    (per-tensor, symmetric int8 weights, uint8 activations)."""
    k, n = w.shape
    w_scale = np.float32(np.abs(w).max() / INT8_MAX)
    wq = np.clip(np.round(w / w_scale), -INT8_MAX, INT8_MAX).astype(np.int8)
    initializers = [
        numpy_helper.from_array(wq, name="W_quantized"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), name="W_zero_point"),
        numpy_helper.from_array(np.array(w_scale, dtype=np.float32), name="W_scale"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["x_quantized", "x_scale", "x_zero_point"]),
        helper.make_node("MatMulInteger", ["x_quantized", "W_quantized", "x_zero_point", "W_zero_point"],
                         ["y_int32"]),
        helper.make_node("Cast", ["y_int32"], ["y_unscaled"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x_scale", "W_scale"], ["y_scale"]),
        helper.make_node("Mul", ["y_unscaled", "y_scale"], ["y"]),
    ]
    return helper.make_graph(nodes, name, [tensor("x", [m, k])], [tensor("y", [m, n])],
                             initializer=initializers)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    print(f"wrote {path} ({len(data)} bytes)")


def write_int8_models(out_dir: Path) -> None:
    """The lin_* models and weights for every shape in LINEAR_SHAPES, into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for m, k, n in LINEAR_SHAPES:
        name = linear_name(m, k, n)
        w = linear_weight(k, n)
        save_model(linear_fp32_graph(f"{name}_fp32", m, w), out_dir / f"{name}_fp32.onnx")
        save_model(linear_int8_graph(f"{name}_int8", m, w), out_dir / f"{name}_int8.onnx")
        npy = out_dir / f"{name}_w.npy"
        tmp = npy.with_name(npy.name + ".tmp")
        with tmp.open("wb") as f:  # a file object, so np.save appends no ".npy" to the temporary name
            np.save(f, np.ascontiguousarray(w.T))
        os.replace(tmp, npy)
        print(f"wrote {npy} ({npy.stat().st_size} bytes)")


def write_peer_models(out_dir: Path) -> None:
    """Every peer model, then the COMPLETE stamp the benchmarks look for (absent while writing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = out_dir / "COMPLETE"
    stamp.unlink(missing_ok=True)
    for n in SIZES:
        node = helper.make_node("MatMul", ["A", "B"], ["C"])

        graph = helper.make_graph(
            [node], f"matmul_{n}", [square("A", n), square("B", n)], [square("C", n)]
        )
        save_model(graph, out_dir / f"matmul_{n}.onnx")

        b = np.random.default_rng(n).standard_normal((n, n), dtype=np.float32)
        graph = helper.make_graph(
            [node],
            f"linear_{n}",
            [square("A", n)],
            [square("C", n)],
            initializer=[numpy_helper.from_array(b, name="B")],
        )
        save_model(graph, out_dir / f"linear_{n}.onnx")

        npy = out_dir / f"linear_{n}_b.npy"
        np.save(npy, np.ascontiguousarray(b))
        print(f"wrote {npy} ({npy.stat().st_size} bytes)")

    for name, (b, h, s, d) in ATTENTION.items():
        for mask in (False, True):
            suffix = "_mask" if mask else ""
            save_model(mha_graph(f"mha_{name}{suffix}", b, h, s, d, mask),
                       out_dir / f"mha_{name}{suffix}.onnx", contrib=True)
            save_model(sdpa_graph(f"sdpa_{name}{suffix}", b, h, s, d, mask),
                       out_dir / f"sdpa_{name}{suffix}.onnx")
    stamp.write_text("written by tools/make_onnx_models.py\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--int8-dir", type=Path, metavar="DIR",
                        help="write the lin_* fp32/INT8 Linear models and weights into DIR "
                             "(instead of the peer models)")
    parser.add_argument("--out-dir", type=Path, metavar="DIR", default=OUT_DIR,
                        help=f"where the peer models go (default {OUT_DIR})")
    args = parser.parse_args()
    if args.int8_dir is not None:
        write_int8_models(args.int8_dir)
    else:
        write_peer_models(args.out_dir)


if __name__ == "__main__":
    main()
