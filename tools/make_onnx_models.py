#!/usr/bin/python3
"""Write the one-node ONNX MatMul models the benchmarks run through ONNX Runtime.

Makes, in bench/models/ (relative to the repo root):
  matmul_{n}.onnx   C = A @ B, A and B both graph inputs (B as activations)
  linear_{n}.onnx   C = A @ B, B an initializer (weights baked in, as a Linear layer)
  linear_{n}_b.npy  that same B, so the benchmark feeds our kernel identical weights
for n in 512, 1024, 2048, all float32 [n, n]. Output is deterministic (fixed seeds).

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


def square(name: str, n: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])


def save_model(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="OmniKernels tools/make_onnx_models.py",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    print(f"wrote {path} ({path.stat().st_size} bytes)")


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


if __name__ == "__main__":
    main()
