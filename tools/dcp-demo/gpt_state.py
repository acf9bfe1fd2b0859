"""A small GPT-like Megatron sharded state dict in any (TP, PP) layout, with
values that are a function of (key, global index), so any layout's load can be
checked element by element. Used by the multi-process tests and the demo."""

import torch

import dcp


def global_tensor(key, shape, dtype=torch.float32):
    """The full tensor `key` of `shape`: distinct values per key and element."""
    seed = sum((i + 1) * ord(c) for i, c in enumerate(key)) % 997
    n = 1
    for s in shape:
        n *= s
    t = (torch.arange(n, dtype=torch.float64) * 0.001 + seed).reshape(shape)
    return t.to(dtype)


class Config:
    def __init__(self, hidden=32, layers=4, vocab=64, ffn=64):
        self.hidden, self.layers, self.vocab, self.ffn = hidden, layers, vocab, ffn


def sharded_state_dict(cfg, tp, pp, rank, empty=False):
    """Rank `rank`'s sharded state dict at TP x PP (rank = pp_rank * tp + tp_rank).

    empty=True gives zero tensors of the same layout (a load request)."""
    pp_rank, tp_rank = divmod(rank, tp)
    h, L = cfg.hidden, cfg.layers
    per_stage = L // pp
    sd = {"model": {}}

    def piece(key, gshape, dtype=torch.float32):
        return torch.zeros(gshape, dtype=dtype) if empty else global_tensor(key, gshape, dtype)

    if pp_rank == 0:
        full = piece("embedding.word_embeddings.weight", (cfg.vocab, h), torch.bfloat16)
        rows = cfg.vocab // tp
        sd["model"]["embedding"] = dcp.ShardedTensor.from_rank_offsets(
            "embedding.word_embeddings.weight", full[tp_rank * rows:(tp_rank + 1) * rows].clone(), (0, tp_rank, tp),
            replica_id=(0, 0, 0))
    layers = []
    for i in range(per_stage):
        g = pp_rank * per_stage + i
        entry = {}
        for name, gshape, axis in (("self_attention.linear_qkv.weight", (3 * h, h), 0),
                                   ("self_attention.linear_proj.weight", (h, h), 1),
                                   ("mlp.linear_fc1.weight", (cfg.ffn, h), 0),
                                   ("mlp.linear_fc2.weight", (h, cfg.ffn), 1)):
            key = "decoder.layers." + name
            full = piece(key, (L,) + gshape)[g]
            n = gshape[axis] // tp
            local = full.narrow(axis, tp_rank * n, n).clone()
            entry[name] = dcp.ShardedTensor.from_rank_offsets(key, local, (0, g, L), (axis + 1, tp_rank, tp),
                                                              replica_id=(0, 0, 0), prepend_axis_num=1)
        ln = piece("decoder.layers.input_layernorm.weight", (L, h))[g].clone()
        entry["input_layernorm.weight"] = dcp.ShardedTensor.from_rank_offsets(
            "decoder.layers.input_layernorm.weight", ln, (0, g, L), replica_id=(0, tp_rank, 0), prepend_axis_num=1)
        layers.append(entry)
    sd["model"]["layers"] = layers
    if pp_rank == pp - 1:
        fln = piece("decoder.final_layernorm.weight", (h,))
        sd["model"]["final_layernorm"] = dcp.ShardedTensor.from_rank_offsets(
            "decoder.final_layernorm.weight", fln.clone(), replica_id=(0, tp_rank, 0))
    sd["rng_state"] = dcp.ShardedObject("rng_state", None if empty else {"rank": rank, "seed": 1234 + rank},
                                        (pp, tp), (pp_rank, tp_rank))
    if not empty:
        sd["iteration"] = 100
        sd["args"] = {"hidden_size": h, "num_layers": L, "tp": tp, "pp": pp}
    return sd


def check(state, sd_request, cfg, tp, pp, rank):
    """'' if every loaded tensor of the request equals the global tensor's slice, else what differs."""
    expect = sharded_state_dict(cfg, tp, pp, rank, empty=False)

    def walk(a, b, path):
        if isinstance(a, dict):
            for k in a:
                msg = walk(a[k], b[k], path + "." + str(k))
                if msg:
                    return msg
        elif isinstance(a, list):
            for i, (x, y) in enumerate(zip(a, b)):
                msg = walk(x, y, f"{path}[{i}]")
                if msg:
                    return msg
        elif isinstance(a, dcp.ShardedTensor):
            if not torch.equal(a.data, b.data):
                return f"{path}: values differ"
        return ""

    return walk(sd_request, expect, "")
