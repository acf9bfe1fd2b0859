"""A small Hugging Face-style model as a sharded safetensors checkpoint, the
rules that map it to Megatron-Core names, and what each Megatron tensor must
hold: shared by test_convert.py and import_mpi_job.py. The files are written
by a plain Python writer (struct + json + NumPy), independent of dcp's."""

import json
import os
import struct

import numpy as np

HIDDEN, FFN, VOCAB, LAYERS = 8, 12, 16, 2

RULES = {"rules": [
    {"match": r"model\.embed_tokens\.weight", "to": "embedding.word_embeddings.weight"},
    {"match": r"model\.layers\.(\d+)\.self_attn\.qkv_proj\.weight",
     "split": {"axis": 0, "into": [{"to": "decoder.layers.{1}.q.weight"}, {"to": "decoder.layers.{1}.k.weight"},
                                   {"to": "decoder.layers.{1}.v.weight"}]}},
    {"match": r"model\.layers\.(\d+)\.mlp\.(gate|up)_proj\.weight", "to": "decoder.layers.{1}.mlp.linear_fc1.weight",
     "concat": {"axis": 0, "by": 2, "order": ["gate", "up"]}},
    {"match": r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", "to": "decoder.layers.{1}.mlp.linear_fc2.weight"},
    {"match": r"model\.layers\.(\d+)\.input_layernorm\.weight", "to": "decoder.layers.{1}.norm.weight"},
    {"match": r"model\.norm\.weight", "to": "decoder.final_layernorm.weight"},
]}

_ST = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64", np.dtype("bool"): "BOOL",
       np.dtype("uint16"): "BF16"}  # bf16 travels as its raw uint16 bits


def values(name, shape, dtype):
    """Deterministic, distinct values for tensor `name`."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(name)) % (2 ** 31)
    rng = np.random.default_rng(seed)
    if dtype == np.dtype("bool"):
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype == np.dtype("int64"):
        return rng.integers(-2 ** 40, 2 ** 40, size=shape, dtype=np.int64)
    if dtype == np.dtype("uint16"):
        return rng.integers(0, 2 ** 16, size=shape, dtype=np.uint16)
    return rng.standard_normal(size=shape).astype(dtype)


def hf_tensors():
    """{HF name: array} of the model."""
    out = {"model.embed_tokens.weight": values("embed", (VOCAB, HIDDEN), np.dtype("float32")),
           "model.norm.weight": values("norm", (HIDDEN,), np.dtype("float16"))}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out[p + "self_attn.qkv_proj.weight"] = values(p + "qkv", (3 * HIDDEN, HIDDEN), np.dtype("float32"))
        out[p + "mlp.gate_proj.weight"] = values(p + "gate", (FFN, HIDDEN), np.dtype("float32"))
        out[p + "mlp.up_proj.weight"] = values(p + "up", (FFN, HIDDEN), np.dtype("float32"))
        out[p + "mlp.down_proj.weight"] = values(p + "down", (HIDDEN, FFN), np.dtype("float32"))
        out[p + "input_layernorm.weight"] = values(p + "ln", (HIDDEN,), np.dtype("float16"))
    return out


def megatron_tensors():
    """{Megatron name: array}: what the rules make of hf_tensors()."""
    hf = hf_tensors()
    out = {"embedding.word_embeddings.weight": hf["model.embed_tokens.weight"],
           "decoder.final_layernorm.weight": hf["model.norm.weight"]}
    for i in range(LAYERS):
        p, q = f"model.layers.{i}.", f"decoder.layers.{i}."
        qkv = hf[p + "self_attn.qkv_proj.weight"]
        out[q + "q.weight"], out[q + "k.weight"], out[q + "v.weight"] = np.split(qkv, 3, axis=0)
        out[q + "mlp.linear_fc1.weight"] = np.concatenate([hf[p + "mlp.gate_proj.weight"],
                                                          hf[p + "mlp.up_proj.weight"]], axis=0)
        out[q + "mlp.linear_fc2.weight"] = hf[p + "mlp.down_proj.weight"]
        out[q + "norm.weight"] = hf[p + "input_layernorm.weight"]
    return out


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file of {name: array} (uint16 arrays as BF16)."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": _ST[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_sharded(directory, files=3):
    """The model as `files` safetensors files and an index; returns the index's path."""
    tensors = hf_tensors()
    names = sorted(tensors)
    weight_map = {}
    for k in range(files):
        part = names[k::files]
        fname = f"model-{k + 1:05d}-of-{files:05d}.safetensors"
        write_safetensors(os.path.join(directory, fname), {n: tensors[n] for n in part}, {"format": "pt"})
        weight_map.update({n: fname for n in part})
    index = os.path.join(directory, "model.safetensors.index.json")
    with open(index, "w") as f:
        json.dump({"metadata": {"total_size": sum(a.nbytes for a in tensors.values())}, "weight_map": weight_map}, f)
    return index


def write_rules(path):
    with open(path, "w") as f:
        json.dump(RULES, f)
    return path


def tp_pp_slices(tp, pp, rank):
    """This rank's (Megatron name, global shape, global offset, local shape, replica id) at TPxPP:
    layer i on stage i % pp; q/k/v and fc1 split by rows over TP (column parallel), fc2 by columns
    (row parallel), norms replicated over TP; the embedding on stage 0, rows over TP; the final
    norm on the last stage."""
    t, p = rank % tp, rank // tp
    full = megatron_tensors()
    out = []

    def rows(name):
        g = full[name].shape
        n = g[0] // tp
        out.append((name, g, (t * n,) + (0,) * (len(g) - 1), (n,) + g[1:], 0))

    def cols(name):
        g = full[name].shape
        n = g[1] // tp
        out.append((name, g, (0, t * n), (g[0], n), 0))

    def replicated(name):
        g = full[name].shape
        out.append((name, g, (0,) * len(g), g, t))

    if p == 0:
        rows("embedding.word_embeddings.weight")
    for i in range(LAYERS):
        if i % pp != p:
            continue
        q = f"decoder.layers.{i}."
        for n in ("q.weight", "k.weight", "v.weight", "mlp.linear_fc1.weight"):
            rows(q + n)
        cols(q + "mlp.linear_fc2.weight")
        replicated(q + "norm.weight")
    if p == pp - 1:
        replicated("decoder.final_layernorm.weight")
    return out
