"""PyTorch checkpoints into a dcp store and back out (``python3 -m dcp.convert``).

Formats:

* a PyTorch distributed checkpoint (DCP): ``.metadata`` (a pickled
  ``Metadata``) and ``*.distcp`` files holding each chunk as a ``torch.save``
  blob at (offset, length), or BYTE_IO bytes. torch 1.13's
  ``torch.distributed._shard.checkpoint`` and torch 2.x's
  ``torch.distributed.checkpoint`` write the same layout;
* Megatron-Core's ``torch_dist``: a DCP directory plus ``metadata.json`` and
  ``common.pt`` (a ``torch.save`` of the common state); its ShardedObjects are
  BYTE_IO items ``KEY/shard_OFFSET_SHAPE`` holding ``torch.save([data])``;
* per-rank ``torch.save`` files of a known layout (offsets JSON, or a TPxPP rule).

Nothing untrusted executes: ``.metadata`` is read by an unpickler that knows
only DCP's metadata classes (as inert stand-ins, no torch code runs), torch
dtypes, ``torch.Size`` and builtin containers; every ``torch.save`` blob is
loaded with ``weights_only=True``; a blob that needs full unpickling is refused
unless the caller passes ``trust_pickle=True``.

Memory: imports write one step as a streaming write (``Store.begin_step``,
``put_part``, ``commit_step``): a part holds whole tensors (every chunk of a
tensor is in one part, as dcp requires) up to ``part_bytes``; a tensor larger
than that is a part of its own. So at most ``max(largest tensor, part_bytes)``
of tensor data is held, plus one serialized chunk being decoded. Exports read
one whole tensor at a time from the store. The step commits only at the end:
an error leaves nothing committed.

This module holds the DCP and torch_dist converters; _torch_files the safe
readers and the step writer; _convert_torch_save the per-rank files.
"""

import io
import json
import os
import re

from ._convert_torch_save import Layout, from_torch_save, parse_splits, to_torch_save, tp_pp_file
from ._torch_files import (DEFAULT_PART_BYTES, OLD_TORCH, _checkpoint_api, _DistcpFiles, _release_freed_memory,
                           _step_of, _StepWriter, _torch, _torch_dtype, read_dcp_metadata, torch_load)
from ._state import BOOKKEEPING_KEYS
from .errors import DataLossError, InvalidArgumentError, NotFoundError
from .mapping import ShardedObject
from .store import Store

__all__ = ["DEFAULT_PART_BYTES", "Layout", "from_torch_dcp", "from_torch_dist", "from_torch_save", "parse_splits",
           "read_dcp_metadata", "to_torch_dcp", "to_torch_save", "torch_load", "tp_pp_file"]

_MEGATRON_CONFIG = "metadata.json"
_MEGATRON_COMMON = "common.pt"
_OBJECT_KEY = re.compile(r"^(.*)/shard_([0-9.]+)_([0-9.-]+)$")


# -- PyTorch distributed checkpoints and Megatron torch_dist in ------------------------------------------------

def _import_dcp_dir(writer, root, metadata, trust_pickle, on_bytes):
    items, storage = metadata
    files = _DistcpFiles(root)
    torch = _torch()
    for fqn, item in items.items():
        if item[0] == "bytes":
            where = storage.get((fqn, None))
            if where is None:
                raise DataLossError(f"{root}/.metadata: value '{fqn}' has no storage entry")
            on_bytes(fqn, files.read(*where, f"value '{fqn}'"))
            continue
        _, dtype, size, chunks = item
        shards = []
        for offsets, sizes in chunks:
            where = storage.get((fqn, offsets))
            what = f"tensor '{fqn}' chunk at {list(offsets)}"
            if where is None:
                raise DataLossError(f"{root}/.metadata: {what} has no storage entry")
            blob = files.read(*where, what)
            t = torch_load(blob, f"{os.path.join(root, where[0])}: {what}", trust_pickle)
            del blob
            if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != tuple(sizes):
                got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise DataLossError(f"{os.path.join(root, where[0])}: {what} holds {got}, the metadata says "
                                    f"{dtype} {tuple(sizes)}")
            if any(o + s > g for o, s, g in zip(offsets, sizes, size)) or len(offsets) != len(size):
                raise DataLossError(f"{root}/.metadata: {what} of {tuple(sizes)} is outside the tensor {size}")
            shards.append((t, offsets))
        writer.add_tensor(fqn, shards, size)


def from_torch_dcp(checkpoint_dir, source, step=None, *, trust_pickle=False, part_bytes=0, overwrite=False):
    """Imports the PyTorch distributed checkpoint directory `source` as step `step` (default: the
    latest + 1) of the dcp store `checkpoint_dir`: each chunk a main-replica shard at its global
    offsets, each BYTE_IO item an object holding its bytes (key (1,), offset (0,), as
    dcp.integrations.torch stores them). Returns {'step', 'tensors', 'objects'}."""
    source = os.fspath(source)
    metadata = read_dcp_metadata(source)  # a malformed checkpoint is refused before the store is touched
    with _StepWriter(checkpoint_dir, step, part_bytes, overwrite) as w:
        _import_dcp_dir(w, source, metadata, trust_pickle, lambda fqn, data: w.add_object(fqn, data))
        return w.commit()


_MEGATRON_VALUE = "megatron_dcp_value"  # as dcp.integrations.megatron stores ShardedObject data


def _megatron_object(fqn, data, source, trust_pickle):
    """(key, value to store, global shape, global offset) of a torch_dist BYTE_IO item: a ShardedObject
    KEY/shard_OFFSET_SHAPE holding torch.save([data]) is stored as dcp.integrations.megatron stores it
    (plain value, tuples kept), so that DcpLoadShardedStrategy and dcp.load give the data back."""
    from ._plain import to_plain
    m = _OBJECT_KEY.match(fqn)
    if not m:
        return fqn, data, (1,), (0,)  # not Megatron's: the bytes, as from_torch_dcp stores them
    value = torch_load(data, f"{source}: sharded object '{fqn}'", trust_pickle)
    if isinstance(value, list) and len(value) == 1:  # Megatron saves torch.save([data])
        value = value[0]
    offset = tuple(int(x) for x in m.group(2).split("."))
    shape = tuple(int(x) for x in m.group(3).split("."))
    try:
        value = _without_namespaces(value)
        to_plain(value, fqn)  # refuses what only pickle can store
        plain = {_MEGATRON_VALUE: value}
    except TypeError as e:
        raise InvalidArgumentError(f"{source}: sharded object '{fqn}': {e}") from e
    return m.group(1), plain, shape, offset


def _without_namespaces(x):
    """Megatron's common state holds `args`, an argparse.Namespace (loadable only with --trust-pickle):
    stored as the dict of its attributes."""
    import argparse
    if isinstance(x, argparse.Namespace):
        x = vars(x)
    if isinstance(x, dict):
        return {k: _without_namespaces(v) for k, v in x.items()}
    if type(x) in (list, tuple):
        return type(x)(_without_namespaces(v) for v in x)
    return x


def from_torch_dist(checkpoint_dir, source, step=None, *, trust_pickle=False, part_bytes=0, overwrite=False):
    """Imports Megatron-Core's torch_dist checkpoint directory `source`: tensors as from_torch_dcp,
    ShardedObjects (BYTE_IO items KEY/shard_OFFSET_SHAPE) as dcp objects KEY at their offset holding
    the value as dcp.integrations.megatron stores it, common.pt as the common state (an
    argparse.Namespace, Megatron's `args`, as a dict). Values are loaded with weights_only=True; one
    that needs full unpickling is refused unless `trust_pickle`; one that dcp's plain values cannot
    hold is an error naming it."""
    source = os.fspath(source)
    config_path = os.path.join(source, _MEGATRON_CONFIG)
    try:
        with open(config_path) as f:
            config = json.load(f)
    except FileNotFoundError as e:
        raise NotFoundError(f"'{source}' is not a Megatron dist checkpoint: no '{config_path}'") from e
    except ValueError as e:
        raise DataLossError(f"{config_path}: not JSON ({e})") from e
    backend = config.get("sharded_backend") if isinstance(config, dict) else None
    if backend != "torch_dist":
        raise InvalidArgumentError(f"{config_path}: sharded_backend is {backend!r}, not 'torch_dist'")
    common = {}
    common_path = os.path.join(source, _MEGATRON_COMMON)
    if os.path.isfile(common_path):
        common = torch_load(common_path, f"{common_path}: the common state", trust_pickle)
        if not isinstance(common, dict):
            raise DataLossError(f"{common_path}: the common state is a {type(common).__name__}, not a dict")
        common = _without_namespaces(common)
    metadata = read_dcp_metadata(source)
    with _StepWriter(checkpoint_dir, step, part_bytes, overwrite) as w:
        def on_bytes(fqn, data):
            key, value, shape, offset = _megatron_object(fqn, data, source, trust_pickle)
            w.add_object(key, value, shape, offset)
        _import_dcp_dir(w, source, metadata, trust_pickle, on_bytes)
        return w.commit(common)


# -- out ------------------------------------------------------------------------------------------------------

def _objects(store, step, meta):
    """{DCP fqn: value} of the step's objects: an object stored as dcp.integrations.torch stores BYTE_IO
    items (one cell) keeps its key; a Megatron ShardedObject cell becomes KEY/shard_OFFSET_SHAPE, the
    fqn torch_dist gives it, holding [value] (as Megatron saves it)."""
    out = {}
    for o in meta["objects"]:
        key = o["key"]
        if key in BOOKKEEPING_KEYS:  # the integrations' own, not the state's
            continue
        shape, offset = tuple(o["global_shape"]), tuple(o["global_offset"])
        request = {"o": ShardedObject(key, None, shape, offset)}
        store.get(step, request)
        value = request["o"].data
        for wrapper in ("torch_dcp_value", _MEGATRON_VALUE):  # dcp.integrations' plain values
            if isinstance(value, dict) and wrapper in value:
                value = value[wrapper]
        if shape == (1,) and offset == (0,):
            out[key] = value
        else:
            out[o["unique_key"]] = [value]
    return out

def to_torch_dcp(checkpoint_dir, target, step=None):
    """Writes step `step` (default: the latest) of the dcp store as a PyTorch distributed checkpoint
    directory `target`, with torch's own FileSystemWriter from this one process: each tensor whole
    (one chunk), objects and the common state as BYTE_IO items (torch.save; bytes imported from a DCP
    checkpoint are written back as they were). The planner's state dict holds meta tensors; each tensor
    is read from the store when the writer asks for it, so one tensor is in memory at a time (each
    tensor is its own .distcp file: torch 2.x's writer holds a file's tensors until it closes it)."""
    torch = _torch()
    save, FileSystemWriter, DefaultSavePlanner, WriteItemType = _checkpoint_api()
    root = os.fspath(checkpoint_dir)
    if os.path.exists(os.path.join(target, ".metadata")):
        from .errors import AlreadyExistsError
        raise AlreadyExistsError(f"'{target}' already holds a PyTorch distributed checkpoint")
    store = Store.open(root, "self", read_only=True, create_if_missing=False)
    try:
        step = _step_of(store, step, root)
        meta = store.metadata(step)
        objects = _objects(store, step, meta)
        common = store.get(step, {}).common_state
        state = {}
        for t in meta["tensors"]:
            state[t["key"]] = torch.empty(tuple(t["global_shape"]), dtype=_torch_dtype(t["dtype"]), device="meta")
        for k in objects:
            state[k] = _ObjectRef(k)
        for k, v in (common or {}).items():
            if k in state:
                raise InvalidArgumentError(f"step {step}: common state entry '{k}' has the name of a tensor or object")
            state[k] = v

        class Planner(DefaultSavePlanner):
            def resolve_data(self, write_item):
                fqn = write_item.index.fqn
                if write_item.type != WriteItemType.BYTE_IO:
                    _release_freed_memory()  # the writer has dropped the previous tensor
                    return store.read(step, fqn)
                value = self.lookup_object(write_item.index) if hasattr(self, "lookup_object") else None
                if fqn in objects:
                    value = objects[fqn]
                    if isinstance(value, (bytes, bytearray)):
                        return io.BytesIO(bytes(value))
                    buf = io.BytesIO()
                    torch.save(value, buf)
                    buf.seek(0)
                    return buf
                return super().resolve_data(write_item)

        os.makedirs(target, exist_ok=True)
        # torch 2.x's writer keeps every tensor of a .distcp file until the file is closed (for its
        # safetensors option): one file per item, as torch 1.13 writes anyway, holds one tensor at a time.
        options = {} if OLD_TORCH() else {"single_file_per_rank": False}
        save(state, storage_writer=FileSystemWriter(os.fspath(target), **options), planner=Planner(), no_dist=True)
        return {"step": step, "tensors": len(meta["tensors"]), "objects": len(objects)}
    finally:
        store.close()


class _ObjectRef:
    """The planner's placeholder for a dcp object (resolved when the writer asks for it)."""

    def __init__(self, key):
        self.key = key
