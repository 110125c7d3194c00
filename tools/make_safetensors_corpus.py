#!/usr/bin/python3
"""Test files for the C# safetensors loader, written by the independent Python reader/writer
(tools/safetensors_np.py, from the format's specification).

  make_safetensors_corpus.py valid DIR      valid files + DIR/manifest.json (every tensor's dtype, shape,
                                            raw bytes and NumPy's float32 conversion, base64)
  make_safetensors_corpus.py malformed DIR  one malformed file (or shard folder) per case +
                                            DIR/malformed.json: [{path, fails, expect, tensor}]
  make_safetensors_corpus.py read FILE...   reads files the C# writer wrote, checks the reference layout,
                                            prints {file: {metadata, tensors: {name: {dtype, shape, data}}}}
  make_safetensors_corpus.py vit DIR HIDDEN LAYERS MLP
                                            a ViT-shaped fp32 checkpoint named like Hugging Face's CLIP
                                            vision tower, with config.json and a tokenizer file
"""
import base64
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def to_float32(a, dtype):
    if dtype == "BF16":
        return st.bf16_bits_to_float32(a)
    return a.astype(np.float32)


def special(rng, shape, dtype):
    """Random values with the edge cases each float type has: +-0, +-inf, NaN, subnormals, extremes."""
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    info = np.finfo(np.float16 if dtype == "F16" else np.float64 if dtype == "F64" else np.float32)
    edge = [0.0, -0.0, np.inf, -np.inf, np.nan, float(info.max), float(info.tiny) / 4, -float(info.tiny), 65504.0, 1e-3]
    flat[:min(len(edge), flat.size)] = edge[:flat.size]
    return x


def valid(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1616)
    with np.errstate(over="ignore"):
        floats = {
            "w.f64": special(rng, (3, 5), "F64").astype(np.float64),
            "w.f32": special(rng, (7, 3), "F32").astype(np.float32),
            "w.f16": special(rng, (4, 9), "F16").astype(np.float16),
            "w.bf16": st.float32_to_bf16_bits(special(rng, (5, 6), "BF16").astype(np.float32)),
        }
    ints = {
        "i.i64": rng.integers(-2**62, 2**62, (4, 2), dtype=np.int64),
        "i.i32": rng.integers(-2**31, 2**31, (3, 3), dtype=np.int32),
        "i.i16": rng.integers(-2**15, 2**15, (5,), dtype=np.int16),
        "i.i8": rng.integers(-128, 128, (2, 7), dtype=np.int8),
        "i.u8": rng.integers(0, 256, (9,), dtype=np.uint8),
        "i.bool": rng.integers(0, 2, (3, 2)).astype(np.bool_),
    }
    odd = {
        "scalar.f32": np.float32(3.25),
        "scalar.i64": np.int64(-7),
        "empty.f32": np.zeros((0,), np.float32),
        "empty.zero_dim": np.zeros((3, 0, 2), np.float16),
        "empty.bf16": np.zeros((0, 4), np.uint16),
        "unicode.名前.é": np.arange(3, dtype=np.float32),
    }
    dtypes = {"w.bf16": "BF16", "empty.bf16": "BF16"}
    all_tensors = {**floats, **ints, **odd}
    metadata = {"format": "pt", "note": "written by tools/make_safetensors_corpus.py", "ünï": "ç"}
    st.save(os.path.join(out, "all.safetensors"), all_tensors, metadata, dtypes)
    st.save(os.path.join(out, "empty_file.safetensors"), {})

    # A sharded checkpoint: two shards and the index, as save_pretrained writes them.
    shards = os.path.join(out, "sharded")
    os.makedirs(shards, exist_ok=True)
    parts = [{"vision_model.encoder.layers.0.mlp.fc1.weight": rng.standard_normal((8, 4)).astype(np.float32),
              "vision_model.encoder.layers.0.mlp.fc1.bias": rng.standard_normal((8,)).astype(np.float32)},
             {"vision_model.encoder.layers.1.mlp.fc1.weight": rng.standard_normal((8, 4)).astype(np.float16),
              "vision_model.post_layernorm.weight": rng.standard_normal((4,)).astype(np.float32)}]
    weight_map = {}
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        st.save(os.path.join(shards, fname), part, {"format": "pt"})
        weight_map.update({k: fname for k in part})
    with open(os.path.join(shards, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(a.nbytes for p in parts for a in p.values())}, "weight_map": weight_map}, f, indent=2)

    manifest = {"files": {}}
    for fname, tensors, dts, meta in [("all.safetensors", all_tensors, dtypes, metadata), ("empty_file.safetensors", {}, {}, {})] + [
            (os.path.join("sharded", f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"), p, {}, {"format": "pt"}) for i, p in enumerate(parts)]:
        entries = {}
        for name, a in tensors.items():
            a = np.array(a)
            dt = dts.get(name) or st._NAMES[a.dtype]
            e = {"dtype": dt, "shape": list(a.shape), "data": b64(a.astype(st.DTYPES[dt]))}
            if dt in ("F64", "F32", "F16", "BF16"):
                with np.errstate(over="ignore"):
                    e["float32"] = b64(to_float32(a, dt))
            entries[name] = e
        manifest["files"][fname] = {"metadata": meta, "tensors": entries}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)


def raw_file(path, header, data=b"", length=None, pad=True):
    """Writes a file from a header (dict, str or bytes) and data, with the length field overridable."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * ((-len(header)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header) if length is None else length))
        f.write(header)
        f.write(data)


def malformed(out):
    os.makedirs(out, exist_ok=True)
    cases = []

    def case(name, expect, tensor=None, fails=None):
        cases.append({"path": name, "fails": fails or name, "expect": expect, "tensor": tensor})

    def t(dtype="F32", shape=(2, 2), offsets=(0, 16)):
        return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}

    data16 = np.arange(4, dtype=np.float32).tobytes()
    good = os.path.join(out, "good.tmp")
    st.save(good, {"a": np.arange(4, dtype=np.float32).reshape(2, 2), "b": np.arange(6, dtype=np.float32)})
    whole = open(good, "rb").read()
    os.remove(good)
    (n,) = struct.unpack("<Q", whole[:8])

    def put(name, content):
        with open(os.path.join(out, name), "wb") as f:
            f.write(content)

    put("trunc_length.safetensors", whole[:5]); case("trunc_length.safetensors", "shorter than the 8-byte header length")
    put("empty.safetensors", b""); case("empty.safetensors", "shorter than the 8-byte header length")
    put("trunc_header.safetensors", whole[:8 + n // 2]); case("trunc_header.safetensors", "runs past the end of the file")
    put("trunc_data.safetensors", whole[:len(whole) - 5]); case("trunc_data.safetensors", "run past the end of the data area", "b")
    raw_file(os.path.join(out, "header_over_cap.safetensors"), {"a": t()}, data16, length=100_000_001)
    case("header_over_cap.safetensors", "exceeds the 100000000-byte cap")
    raw_file(os.path.join(out, "header_huge.safetensors"), {"a": t()}, data16, length=2**64 - 1)
    case("header_huge.safetensors", "exceeds the 100000000-byte cap")
    raw_file(os.path.join(out, "header_beyond_file.safetensors"), {"a": t()}, data16, length=5000)
    case("header_beyond_file.safetensors", "runs past the end of the file")
    raw_file(os.path.join(out, "bad_utf8.safetensors"), b'{"a\xff\xfe":' + json.dumps(t()).encode() + b"}", data16)
    case("bad_utf8.safetensors", "not valid UTF-8")
    raw_file(os.path.join(out, "bad_json.safetensors"), '{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]', data16)
    case("bad_json.safetensors", "not valid JSON")
    raw_file(os.path.join(out, "json_array.safetensors"), "[1, 2, 3]", data16)
    case("json_array.safetensors", "not a JSON object")
    raw_file(os.path.join(out, "json_string.safetensors"), '"a string"', data16)
    case("json_string.safetensors", "not a JSON object")
    raw_file(os.path.join(out, "too_deep.safetensors"), "{\"a\":" + "[" * 64 + "]" * 64 + "}", data16)
    case("too_deep.safetensors", "not valid JSON")
    raw_file(os.path.join(out, "unknown_dtype.safetensors"), {"a": t(dtype="Q4")}, data16)
    case("unknown_dtype.safetensors", "unknown dtype", "a")
    raw_file(os.path.join(out, "dtype_lowercase.safetensors"), {"a": t(dtype="f32")}, data16)
    case("dtype_lowercase.safetensors", "unknown dtype", "a")
    raw_file(os.path.join(out, "dim_negative.safetensors"), {"a": t(shape=(-2, -2))}, data16)
    case("dim_negative.safetensors", "is negative", "a")
    raw_file(os.path.join(out, "dim_float.safetensors"), '{"a":{"dtype":"F32","shape":[2.5,2],"data_offsets":[0,16]}}', data16)
    case("dim_float.safetensors", "not an integer", "a")
    raw_file(os.path.join(out, "dim_string.safetensors"), '{"a":{"dtype":"F32","shape":["2",2],"data_offsets":[0,16]}}', data16)
    case("dim_string.safetensors", "not an integer", "a")
    raw_file(os.path.join(out, "dim_beyond_int64.safetensors"), '{"a":{"dtype":"F32","shape":[100000000000000000000,2],"data_offsets":[0,16]}}', data16)
    case("dim_beyond_int64.safetensors", "not an integer in 64-bit range", "a")
    raw_file(os.path.join(out, "dim_overflow.safetensors"), {"a": t(shape=(2**32, 2**32, 2**32))}, data16)
    case("dim_overflow.safetensors", "overflows a 64-bit byte count", "a")
    raw_file(os.path.join(out, "bytes_overflow.safetensors"), {"a": t(dtype="F64", shape=(2**61,))}, data16)
    case("bytes_overflow.safetensors", "overflows a 64-bit byte count", "a")
    raw_file(os.path.join(out, "offsets_reversed.safetensors"), {"a": t(offsets=(16, 0))}, data16)
    case("offsets_reversed.safetensors", "are reversed", "a")
    raw_file(os.path.join(out, "offsets_past_end.safetensors"), {"a": t(offsets=(16, 32))}, data16)
    case("offsets_past_end.safetensors", "run past the end of the data area", "a")
    raw_file(os.path.join(out, "offsets_negative.safetensors"), {"a": t(offsets=(-16, 0))}, data16)
    case("offsets_negative.safetensors", "not a non-negative 64-bit integer", "a")
    raw_file(os.path.join(out, "offsets_three.safetensors"), {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8, 16]}}, data16)
    case("offsets_three.safetensors", "expected [begin, end]", "a")
    raw_file(os.path.join(out, "offsets_overlap.safetensors"), {"a": t(offsets=(0, 16)), "b": t(shape=(2,), offsets=(8, 16))}, data16)
    case("offsets_overlap.safetensors", "overlap", "b")
    raw_file(os.path.join(out, "size_mismatch.safetensors"), {"a": t(shape=(3, 2), offsets=(0, 16))}, data16 + data16)
    case("size_mismatch.safetensors", "hold 16 bytes but F32 [3, 2] needs 24", "a")
    dup = '{"a":' + json.dumps(t()) + ',"a":' + json.dumps(t(shape=(2,), offsets=(0, 8))) + "}"
    raw_file(os.path.join(out, "duplicate_name.safetensors"), dup, data16)
    case("duplicate_name.safetensors", "'a' appears twice", "a")
    raw_file(os.path.join(out, "duplicate_field.safetensors"), '{"a":{"dtype":"F32","dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', data16)
    case("duplicate_field.safetensors", "field 'dtype' appears twice", "a")
    raw_file(os.path.join(out, "missing_dtype.safetensors"), {"a": {"shape": [2, 2], "data_offsets": [0, 16]}}, data16)
    case("missing_dtype.safetensors", "no dtype", "a")
    raw_file(os.path.join(out, "missing_offsets.safetensors"), {"a": {"dtype": "F32", "shape": [2, 2]}}, data16)
    case("missing_offsets.safetensors", "no data_offsets", "a")
    raw_file(os.path.join(out, "tensor_not_object.safetensors"), {"a": [1, 2]}, data16)
    case("tensor_not_object.safetensors", "expected an object", "a")
    raw_file(os.path.join(out, "metadata_not_string.safetensors"), {"__metadata__": {"k": 3}, "a": t()}, data16)
    case("metadata_not_string.safetensors", "expected a string")

    # Sharded checkpoints (folders holding model.safetensors.index.json).
    def shard_dir(name, weight_map, shards, raw_index=None):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for fname, tensors in shards.items():
            st.save(os.path.join(d, fname), tensors)
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            f.write(raw_index if raw_index is not None else json.dumps({"metadata": {}, "weight_map": weight_map}))
        return os.path.join(name, "model.safetensors.index.json")

    w = np.ones((2, 2), np.float32)
    idx = shard_dir("index_missing_shard", {"a": "s1.safetensors", "b": "s2.safetensors"}, {"s1.safetensors": {"a": w}})
    case("index_missing_shard", "is in shard s2.safetensors, which does not exist", "b", fails=idx)
    idx = shard_dir("index_absent_tensor", {"a": "s1.safetensors", "b": "s1.safetensors"}, {"s1.safetensors": {"a": w}})
    case("index_absent_tensor", "does not hold it", "b", fails=idx)
    idx = shard_dir("index_duplicate", None, {"s1.safetensors": {"a": w}},
                    raw_index='{"weight_map": {"a": "s1.safetensors", "a": "s1.safetensors"}}')
    case("index_duplicate", "listed twice", "a", fails=idx)
    idx = shard_dir("index_unlisted", {"a": "s1.safetensors"}, {"s1.safetensors": {"a": w, "extra": w}})
    case("index_unlisted", "which the index does not list", "extra", fails=idx)
    # The index puts "a" in s1 only; s2, which the index names for "b", holds an "a" too.
    idx = shard_dir("index_two_shards", {"a": "s1.safetensors", "b": "s2.safetensors"}, {"s1.safetensors": {"a": w}, "s2.safetensors": {"a": w, "b": w}})
    case("index_two_shards", "but the index lists it in", "a", fails=idx)
    idx = shard_dir("index_path_escape", {"a": "../all.safetensors"}, {})
    case("index_path_escape", "not a file name in the index's folder", "a", fails=idx)
    idx = shard_dir("index_no_weight_map", None, {}, raw_index='{"metadata": {}}')
    case("index_no_weight_map", "weight_map", fails=idx)
    idx = shard_dir("index_bad_json", None, {}, raw_index='{"weight_map": {')
    case("index_bad_json", "not valid JSON", fails=idx)
    d = os.path.join(out, "index_bad_shard")
    os.makedirs(d, exist_ok=True)
    put(os.path.join("index_bad_shard", "s1.safetensors"), whole[:len(whole) - 5])
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}}, f)
    case("index_bad_shard", "run past the end of the data area", "b", fails=os.path.join("index_bad_shard", "s1.safetensors"))
    os.makedirs(os.path.join(out, "folder_without_model"), exist_ok=True)
    case("folder_without_model", "holds neither model.safetensors nor model.safetensors.index.json")
    with open(os.path.join(out, "malformed.json"), "w") as f:
        json.dump(cases, f, indent=1)


def read(paths):
    result = {}
    for p in paths:
        tensors, dtypes, metadata = st.load(p)
        st.check_reference_layout(p)
        result[p] = {"metadata": metadata, "tensors": {
            k: {"dtype": dtypes[k], "shape": list(v.shape), "data": b64(v)} for k, v in tensors.items()}}
    json.dump(result, sys.stdout, ensure_ascii=False)


def vit(out, hidden, layers, mlp, patch=16, image=224, classes=0):
    """A ViT-shaped fp32 checkpoint named like Hugging Face's CLIP vision tower, plus config.json and a tokenizer file."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2016)
    p = "vision_model."
    n = (image // patch) ** 2 + 1

    def r(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    t = {p + "embeddings.patch_embedding.weight": r(hidden, 3, patch, patch), p + "embeddings.class_embedding": r(hidden),
         p + "embeddings.position_embedding.weight": r(n, hidden), p + "pre_layrnorm.weight": r(hidden), p + "pre_layrnorm.bias": r(hidden),
         p + "post_layernorm.weight": r(hidden), p + "post_layernorm.bias": r(hidden)}
    for i in range(layers):
        q = f"{p}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[q + f"self_attn.{proj}.weight"] = r(hidden, hidden)
            t[q + f"self_attn.{proj}.bias"] = r(hidden)
        t[q + "mlp.fc1.weight"], t[q + "mlp.fc1.bias"] = r(mlp, hidden), r(mlp)
        t[q + "mlp.fc2.weight"], t[q + "mlp.fc2.bias"] = r(hidden, mlp), r(hidden)
        for ln in ("layer_norm1", "layer_norm2"):
            t[q + ln + ".weight"], t[q + ln + ".bias"] = r(hidden), r(hidden)
    if classes:
        t["classifier.weight"], t["classifier.bias"] = r(classes, hidden), r(classes)
    st.save(os.path.join(out, "model.safetensors"), t, {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"model_type": "clip_vision_model", "hidden_size": hidden, "num_hidden_layers": layers,
                   "intermediate_size": mlp, "patch_size": patch, "image_size": image}, f, indent=2)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}, f)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("valid", "malformed", "read", "vit"):
        sys.exit(__doc__)
    if sys.argv[1] == "valid":
        valid(sys.argv[2])
    elif sys.argv[1] == "malformed":
        malformed(sys.argv[2])
    elif sys.argv[1] == "vit":
        vit(sys.argv[2], *(int(a) for a in sys.argv[3:]))
    else:
        read(sys.argv[2:])
