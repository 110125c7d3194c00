"""A safetensors reader and writer written from the format's specification, with NumPy only.

The format: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON (an object of
name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an optional "__metadata__" of
string -> string), then the data area; offsets are relative to the data area's start, tensors are
C-order little-endian. This module is the independent check of the C# loader: the tests' valid
files are written here, and what the C# writer writes is read back here.
"""
import json
import struct

import numpy as np

# BF16 has no NumPy dtype: it travels as uint16 bit patterns (the top half of a float32).
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_NAMES = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
          np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
          np.dtype("?"): "BOOL"}


def float32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16, as torch does, returned as uint16 bits."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_float32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def save(path, tensors, metadata=None, dtypes=None):
    """Writes {name: ndarray} sorted by name, 8-byte aligned, header padded with spaces to a
    multiple of 8. `dtypes` may name a tensor's safetensors dtype (needed for "BF16", whose array
    holds the uint16 bits)."""
    dtypes = dtypes or {}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C", copy=True)  # ascontiguousarray would turn a scalar into [1]
        dt = dtypes.get(name) or _NAMES[a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype]
        a = a.astype(DTYPES[dt], copy=False)
        data = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        pad = (-len(data)) % 8
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns ({name: ndarray (BF16 as uint16 bits)}, {name: dtype}, metadata); checks what the
    specification requires and raises ValueError naming what is wrong."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} beyond the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors, dtypes, spans = {}, {}, []
    for name, info in header.items():
        dt = DTYPES[info["dtype"]]
        shape = [int(d) for d in info["shape"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * dt.itemsize:
            raise ValueError(f"{path}: tensor {name}: data_offsets {begin}..{end} do not hold {shape} {info['dtype']}")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
        dtypes[name] = info["dtype"]
    spans.sort()
    for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: tensors {n0} and {n1} overlap")
    return tensors, dtypes, metadata
