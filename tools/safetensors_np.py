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
    """Writes {name: ndarray} laid out as the format's reference implementation does: the header
    (`__metadata__` first) padded with spaces to a multiple of 8, then the tensors contiguous, ordered
    by element size (largest first) and then by name, so that each starts at a multiple of its
    element size. `dtypes` may name a tensor's safetensors dtype (needed for "BF16", whose array
    holds the uint16 bits)."""
    dtypes = dtypes or {}
    arrays = {}
    for name in tensors:
        a = np.array(tensors[name], order="C", copy=True)  # ascontiguousarray would turn a scalar into [1]
        dt = dtypes.get(name) or _NAMES[a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype]
        arrays[name] = (dt, a.astype(DTYPES[dt], copy=False))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(arrays, key=lambda n: (-DTYPES[arrays[n][0]].itemsize, n)):
        dt, a = arrays[name]
        data = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"key {k!r} appears twice")
        d[k] = v
    return d


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
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors, dtypes, spans = {}, {}, []
    for name, info in header.items():
        dt = DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        if not all(type(v) is int and v >= 0 for v in shape + [begin, end]):
            raise ValueError(f"{path}: tensor {name}: shape {shape} or data_offsets {begin}..{end} not non-negative integers")
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


def check_reference_layout(path):
    """Raises ValueError unless the file is laid out as the reference implementation writes it: header
    length a multiple of 8 and padded with spaces, tensors contiguous from offset 0 to the end of the
    file in (element size descending, name) order. Returns the names in data order."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8:8 + n]
    if n % 8 or text.rstrip(b" ") != text.rstrip():
        raise ValueError(f"{path}: header length {n} is not a multiple of 8 padded with spaces")
    header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    header.pop("__metadata__", None)
    entries = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    # Empty tensors have begin == end; sort them among their neighbours by the expected key.
    order = sorted(header, key=lambda k: (-DTYPES[header[k]["dtype"]].itemsize, k))
    pos = 0
    for name in order:
        begin, end = header[name]["data_offsets"]
        if begin != pos:
            raise ValueError(f"{path}: tensor {name} starts at {begin}, expected {pos} (contiguous, size then name order)")
        pos = end
    if 8 + n + pos != len(raw):
        raise ValueError(f"{path}: tensors end at {pos} but the data area holds {len(raw) - 8 - n} bytes")
    return [name for _, _, name in entries]
