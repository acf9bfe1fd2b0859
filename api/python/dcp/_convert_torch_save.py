"""Per-rank ``torch.save`` files of a known layout into a dcp step and back out (dcp.convert's
``from-torch-save`` / ``to-torch-save``): a layout says where each file's tensors lie in the global
tensors, given as an offsets JSON or as Megatron's TPxPP rule."""

import json
import os
import re

from ._torch_files import _release_freed_memory, _step_of, _StepWriter, _torch, torch_load
from .errors import DataLossError, InvalidArgumentError, NotFoundError
from .store import Store


def tp_pp_file(tp_rank, pp_rank, pp):
    """Megatron's per-rank file name: mp_rank_TT (pp = 1) or mp_rank_TT_PPP."""
    return f"mp_rank_{tp_rank:02d}.pt" if pp == 1 else f"mp_rank_{tp_rank:02d}_{pp_rank:03d}.pt"


class Layout:
    """Where each per-rank file's tensors lie in the global tensors: {file: {local key: (global key,
    global offset, local shape or None)}} and {global key: global shape or None}."""

    def __init__(self, files, global_shapes):
        self.files = files
        self.global_shapes = global_shapes

    @classmethod
    def from_json(cls, path):
        """{"global_shapes": {key: [..]}, "files": {file: {key: [offsets] | {"offset": [..], "shape": [..],
        "key": global key}}}}; file names relative to the JSON's folder or the source folder."""
        try:
            with open(path) as f:
                spec = json.load(f)
            files = {}
            for name, entries in spec["files"].items():
                files[name] = {}
                for k, v in entries.items():
                    if isinstance(v, dict):
                        files[name][k] = (v.get("key", k), tuple(v["offset"]),
                                          tuple(v["shape"]) if "shape" in v else None)
                    else:
                        files[name][k] = (k, tuple(v), None)
            shapes = {k: tuple(v) for k, v in spec.get("global_shapes", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidArgumentError(f"{path}: not an offsets layout ({type(e).__name__}: {e})") from e
        return cls(files, shapes)

    @classmethod
    def tp_pp(cls, tp, pp, splits, global_shapes, layer_pattern=r"layers\.(\d+)\.", last_stage=()):
        """Megatron-style TPxPP: a key matching a `splits` pattern (fnmatch) is split evenly along its axis
        across TP ranks, others are replicated; keys with a layer number (`layer_pattern`) go to the stage
        holding it, renumbered from 0 in each stage; keys matching `last_stage` to the last stage, all
        others to the first. `global_shapes`: {key: shape}."""
        import fnmatch
        tp, pp = int(tp), int(pp)
        if tp < 1 or pp < 1:
            raise InvalidArgumentError(f"--tp {tp} --pp {pp}: both must be >= 1")
        pattern = re.compile(layer_pattern)
        layers = [int(m.group(1)) for k in global_shapes for m in [pattern.search(k)] if m]
        n_layers = max(layers) + 1 if layers else 0
        if n_layers % pp:
            raise InvalidArgumentError(f"{n_layers} layers do not split evenly into {pp} pipeline stages")
        per_stage = n_layers // pp if pp else 0
        files = {tp_pp_file(t, s, pp): {} for s in range(pp) for t in range(tp)}
        for key, shape in global_shapes.items():
            m = pattern.search(key)
            if m:
                layer = int(m.group(1))
                stage, local = layer // per_stage, key[:m.start(1)] + str(layer % per_stage) + key[m.end(1):]
            else:
                stage = pp - 1 if any(fnmatch.fnmatchcase(key, p) for p in last_stage) else 0
                local = key
            axis = next((a for p, a in splits if fnmatch.fnmatchcase(key, p)), None)
            for t in range(tp):
                if axis is None:
                    files[tp_pp_file(t, stage, pp)][local] = (key, (0,) * len(shape), tuple(shape))
                    continue
                if axis >= len(shape) or shape[axis] % tp:
                    raise InvalidArgumentError(f"tensor '{key}' of shape {tuple(shape)} does not split evenly "
                                               f"into {tp} along axis {axis}")
                part = shape[axis] // tp
                offset = tuple(t * part if a == axis else 0 for a in range(len(shape)))
                local_shape = tuple(part if a == axis else s for a, s in enumerate(shape))
                files[tp_pp_file(t, stage, pp)][local] = (key, offset, local_shape)
        return cls(files, {k: tuple(v) for k, v in global_shapes.items()})


def parse_splits(values):
    """['PATTERN=AXIS', ...] -> [(pattern, axis)]."""
    out = []
    for v in values or ():
        pattern, sep, axis = str(v).rpartition("=")
        if not sep or not axis.lstrip("-").isdigit():
            raise InvalidArgumentError(f"--split {v!r}: expected PATTERN=AXIS")
        out.append((pattern, int(axis)))
    return out


def from_torch_save(checkpoint_dir, files, step=None, *, offsets=None, tp=None, pp=1, splits=(),
                    layer_pattern=r"layers\.(\d+)\.", last_stage=(), trust_pickle=False, part_bytes=0,
                    overwrite=False):
    """Imports per-rank torch.save files (each a flat {key: tensor} dict) of a known layout: `offsets`
    (a Layout JSON path) or Megatron's TPxPP (`tp`, `pp`, `splits` of 'PATTERN=AXIS'; files named
    mp_rank_TT[_PPP].pt). Files are loaded one at a time (weights_only=True); each tensor's shards
    are written when its last file has been read. Non-tensor values become the common state (from
    the first file that has them)."""
    torch = _torch()
    files = [os.fspath(f) for f in files]
    by_name = {os.path.basename(f): f for f in files}
    if offsets is not None:
        layout = Layout.from_json(offsets)
    elif tp is not None:
        # Global shapes follow from the TP rank 0 files of every stage.
        firsts = [by_name.get(tp_pp_file(0, s, int(pp))) for s in range(int(pp))]
        if None in firsts:
            raise NotFoundError(f"TP{tp}xPP{pp}: files {[tp_pp_file(0, s, int(pp)) for s in range(int(pp))]} "
                                f"are not all among {sorted(by_name)}")
        layout = _tp_pp_from_files(firsts, int(tp), int(pp), parse_splits(splits), layer_pattern, last_stage,
                                   trust_pickle)
    else:
        raise InvalidArgumentError("give the layout: offsets=JSON or tp=N [pp=N]")
    missing = sorted(set(layout.files) - set(by_name))
    if missing:
        raise NotFoundError(f"the layout names files {missing} that were not given")
    remaining = {}  # global key -> files still to read
    for name, entries in layout.files.items():
        for gkey, _, _ in entries.values():
            remaining.setdefault(gkey, set()).add(name)
    pending, shapes, common = {}, dict(layout.global_shapes), {}
    with _StepWriter(checkpoint_dir, step, part_bytes, overwrite) as w:
        for name in layout.files:
            path = by_name[name]
            sd = torch_load(path, path, trust_pickle, mmap=True)
            if not isinstance(sd, dict):
                raise DataLossError(f"{path}: holds a {type(sd).__name__}, not a state dict")
            for k, v in sd.items():
                if not isinstance(v, torch.Tensor):
                    common.setdefault(k, v)
                elif k not in layout.files[name]:
                    raise InvalidArgumentError(f"{path}: tensor '{k}' is not in the layout")
            for local, (gkey, offset, local_shape) in layout.files[name].items():
                t = sd.get(local)
                if not isinstance(t, torch.Tensor):
                    raise DataLossError(f"{path}: tensor '{local}' of the layout is missing")
                if local_shape is not None and tuple(t.shape) != tuple(local_shape):
                    raise DataLossError(f"{path}: tensor '{local}' has shape {tuple(t.shape)}, the layout says "
                                        f"{tuple(local_shape)}")
                gshape = shapes.get(gkey)
                if gshape is None:
                    raise InvalidArgumentError(f"the layout gives no global shape for tensor '{gkey}'")
                if len(offset) != t.dim() or any(o + s > g for o, s, g in zip(offset, t.shape, gshape)):
                    raise InvalidArgumentError(f"{path}: tensor '{local}' of {tuple(t.shape)} at {list(offset)} is "
                                               f"outside '{gkey}' {tuple(gshape)}")
                pending.setdefault(gkey, {})[tuple(offset)] = t  # replicas (same offset) are stored once
                remaining[gkey].discard(name)
                if not remaining[gkey]:
                    w.add_tensor(gkey, [(x, o) for o, x in pending.pop(gkey).items()], gshape)
            del sd
        return w.commit(common)


def _tp_pp_from_files(firsts, tp, pp, splits, layer_pattern, last_stage, trust_pickle):
    """The TPxPP layout, the global shapes read from the TP rank 0 file of each stage."""
    import fnmatch
    torch = _torch()
    pattern = re.compile(layer_pattern)
    local_shapes = []
    for path in firsts:
        sd = torch_load(path, path, trust_pickle, mmap=True)
        if not isinstance(sd, dict):
            raise DataLossError(f"{path}: holds a {type(sd).__name__}, not a state dict")
        local_shapes.append({k: tuple(v.shape) for k, v in sd.items() if isinstance(v, torch.Tensor)})
        del sd
    per_stage = 1 + max([int(m.group(1)) for shapes in local_shapes for k in shapes
                         for m in [pattern.search(k)] if m] or [-1])
    global_shapes = {}
    for stage, shapes in enumerate(local_shapes):
        for k, shape in shapes.items():
            m = pattern.search(k)
            key = k if not m else k[:m.start(1)] + str(int(m.group(1)) + stage * per_stage) + k[m.end(1):]
            axis = next((a for p, a in splits if fnmatch.fnmatchcase(key, p)), None)
            global_shapes[key] = tuple(s * tp if a == axis else s for a, s in enumerate(shape))
    return Layout.tp_pp(tp, pp, splits, global_shapes, layer_pattern, last_stage)


def to_torch_save(checkpoint_dir, outdir, step=None, *, offsets=None, tp=None, pp=1, splits=(),
                  layer_pattern=r"layers\.(\d+)\.", last_stage=()):
    """Writes step `step` (default: the latest) as one torch.save file per rank of a layout: `offsets`
    (a Layout JSON whose entries give offset and shape) or TPxPP (`tp`, `pp`, `splits`), files named
    mp_rank_TT[_PPP].pt. Each file holds its tensors (contiguous copies of its regions) and the
    common state. One file's tensors are in memory at a time (torch.save writes a file whole)."""
    torch = _torch()
    root = os.fspath(checkpoint_dir)
    with Store.open(root, "self", read_only=True, create_if_missing=False) as store:
        step = _step_of(store, step, root)
        meta = store.metadata(step)
        shapes = {t["key"]: tuple(t["global_shape"]) for t in meta["tensors"]}
        if offsets is not None:
            layout = Layout.from_json(offsets)
        elif tp is not None:
            layout = Layout.tp_pp(tp, pp, parse_splits(splits), shapes, layer_pattern, last_stage)
        else:
            raise InvalidArgumentError("give the layout: offsets=JSON or tp=N [pp=N]")
        common = store.get(step, {}).common_state or {}
        os.makedirs(outdir, exist_ok=True)
        written = []
        for name, entries in layout.files.items():
            sd = {}
            for local, (gkey, offset, local_shape) in entries.items():
                if gkey not in shapes:
                    raise NotFoundError(f"{name}: tensor '{gkey}' is not in step {step} of '{root}'")
                if local_shape is None:
                    raise InvalidArgumentError(f"{name}: the layout gives no shape for '{local}'")
                sd[local] = store.read(step, gkey, (tuple(offset), tuple(local_shape)))
            sd.update({k: v for k, v in common.items() if k not in sd})
            path = os.path.join(outdir, name)
            torch.save(sd, path)
            written.append(path)
            del sd
            _release_freed_memory()
        return {"step": step, "files": written}
