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
"""

import io
import json
import os
import pickle
import re
import sys

from . import _tensors
from .errors import DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from .mapping import ShardedObject, ShardedTensor
from .store import Store

DEFAULT_PART_BYTES = 256 << 20
_MEGATRON_CONFIG = "metadata.json"
_MEGATRON_COMMON = "common.pt"
_OBJECT_KEY = re.compile(r"^(.*)/shard_([0-9.]+)_([0-9.-]+)$")


def _torch():
    import torch
    return torch


def OLD_TORCH():  # noqa: N802 - reads as the constant it is
    return _torch().__version__.startswith("1.")


# -- .metadata: a restricted unpickler ------------------------------------------------------------------------

class _Record:
    """An inert stand-in for one of DCP's metadata dataclasses: the pickled state, as attributes."""

    _name = "Record"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
            state = dict(state[0] or {}, **(state[1] or {}))  # (dict state, slot state)
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif isinstance(state, tuple) and self._name == "TensorProperties":
            self.dtype = state[0]  # (dtype, layout, requires_grad, memory format, pin_memory)
        else:
            raise DataLossError(f"{self._name}: unexpected pickled state of type {type(state).__name__}")

    def _id(self):
        offset = self.__dict__.get("offset")
        return (self.__dict__.get("fqn"), None if offset is None else tuple(offset))

    def __hash__(self):  # MetadataIndex keys storage_data
        return hash(self._id())

    def __eq__(self, other):
        return isinstance(other, _Record) and self._id() == other._id()

    def __repr__(self):
        return f"{self._name}({self.__dict__})"


class _EnumStandIn:
    """An enum class of the metadata (the memory format encoding): members are their names."""

    def __call__(self, value):
        return value


def _record_class(name):
    return type(name, (_Record,), {"_name": name})


_METADATA_CLASSES = ("Metadata", "TensorStorageMetadata", "ChunkStorageMetadata", "BytesStorageMetadata",
                     "MetadataIndex", "TensorProperties", "StorageMeta", "_StorageInfo", "_StoragePrefix")
_METADATA_MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem",
                     "torch.distributed._shard.checkpoint.metadata", "torch.distributed._shard.checkpoint.filesystem",
                     "torch.distributed._shard.sharded_tensor.metadata")
_ENUMS = ("MEM_FORMAT_ENCODING", "_MEM_FORMAT_ENCODING")
_LAYOUTS = ("strided", "sparse_coo", "sparse_csr", "_mkldnn")
_CONTAINERS = {"dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def _safe_getattr(obj, name):
    # Python 3.11 pickles an enum member as getattr(EnumClass, "NAME"); nothing else may use getattr.
    if isinstance(obj, _EnumStandIn) and isinstance(name, str) and name.isidentifier():
        return name
    raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) is not allowed")


def _get_layout(name):
    if isinstance(name, str) and name.replace("torch.", "") in _LAYOUTS:
        return name
    raise pickle.UnpicklingError(f"layout {name!r} is not allowed")


def _size(values=()):
    return tuple(int(v) for v in values)


def _path(*parts):
    return os.path.join(*[str(p) for p in parts]) if parts else ""


class _MetadataUnpickler(pickle.Unpickler):
    """Knows DCP's metadata classes (as _Record stand-ins), torch dtypes, torch.Size and builtin
    containers; refuses every other global, naming it."""

    _records = {}

    def __init__(self, file, what):
        super().__init__(file)
        self.what = what

    def find_class(self, module, name):
        if module in _METADATA_MODULES:
            if name in _METADATA_CLASSES:
                return self._records.setdefault(name, _record_class(name))
            if name in _ENUMS:
                return _EnumStandIn()
        elif module == "torch":
            if name == "Size":
                return _size
            torch = _torch()
            dtype = getattr(torch, name, None) if not name.startswith("_") else None
            if isinstance(dtype, torch.dtype):
                return dtype
        elif module == "torch.serialization" and name == "_get_layout":
            return _get_layout
        elif module == "builtins":
            if name in _CONTAINERS:
                return _CONTAINERS[name]
            if name == "getattr":
                return _safe_getattr
        elif module in ("pathlib", "posixpath") and name in ("PosixPath", "Path", "PurePosixPath"):
            return _path
        raise DataLossError(f"{self.what}: refusing to unpickle {module}.{name}: a DCP .metadata references only "
                            f"torch.distributed.checkpoint metadata classes, torch dtypes and containers")


def read_dcp_metadata(root):
    """The DCP Metadata of the checkpoint directory `root`, as {fqn: ('tensor', dtype, size, [(offsets,
    sizes)]) | ('bytes',)} and {(fqn, offsets or None): (relative path, offset, length)}. Nothing
    but the stand-ins is constructed. Raises NotFoundError / DataLossError naming the file."""
    path = os.path.join(root, ".metadata")
    if not os.path.isfile(path):
        raise NotFoundError(f"'{root}' is not a PyTorch distributed checkpoint: no file '{path}'")
    with open(path, "rb") as f:
        try:
            md = _MetadataUnpickler(f, path).load()
        except DataLossError:
            raise
        except Exception as e:  # noqa: BLE001 - any malformed pickle
            raise DataLossError(f"{path}: not a DCP Metadata pickle ({type(e).__name__}: {e})") from e
    if type(md).__name__ != "Metadata" or not isinstance(getattr(md, "state_dict_metadata", None), dict):
        raise DataLossError(f"{path}: the pickle holds a {type(md).__name__}, not a DCP Metadata")
    items = {}
    for fqn, sm in md.state_dict_metadata.items():
        kind = type(sm).__name__
        if kind == "BytesStorageMetadata":
            items[fqn] = ("bytes",)
        elif kind == "TensorStorageMetadata":
            try:
                dtype = sm.properties.dtype
                chunks = [(tuple(c.offsets), tuple(c.sizes)) for c in sm.chunks]
                items[fqn] = ("tensor", dtype, tuple(sm.size), chunks)
            except (AttributeError, TypeError) as e:
                raise DataLossError(f"{path}: tensor '{fqn}': malformed TensorStorageMetadata ({e})") from e
        else:
            raise DataLossError(f"{path}: '{fqn}' has storage metadata of unknown type {kind}")
    storage = {}
    for index, info in (getattr(md, "storage_data", None) or {}).items():
        try:
            offset = getattr(index, "offset", None)
            key = (index.fqn, None if offset is None else tuple(offset))
            storage[key] = (info.relative_path, int(info.offset), int(info.length))
        except (AttributeError, TypeError, ValueError) as e:
            raise DataLossError(f"{path}: malformed storage entry {index!r} ({e})") from e
        if getattr(info, "transform_descriptors", None):
            raise InvalidArgumentError(f"{path}: '{index.fqn}' was written with stream transforms "
                                       f"{info.transform_descriptors}, which this converter does not read")
    return items, storage


# -- torch.save blobs -----------------------------------------------------------------------------------------

def _has_param(name):
    import inspect
    return name in inspect.signature(_torch().load).parameters


def _reason(error):
    """The line of torch's weights_only refusal that names what it refused."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    named = [line for line in lines if "GLOBAL" in line or "global" in line]
    return (named or lines or [type(error).__name__])[0]


def torch_load(data, what, trust_pickle=False, mmap=False):
    """torch.load of bytes or a path with weights_only=True; a blob that needs full unpickling is
    refused (naming `what`) unless `trust_pickle`. `mmap` (a path, torch >= 2.1, zip format): the
    tensors stay in the file until used."""
    torch = _torch()
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else os.fspath(data)
    kwargs = {"mmap": True} if mmap and isinstance(src, str) and _has_param("mmap") else {}
    if not _has_param("weights_only"):
        if not trust_pickle:
            raise FailedPreconditionError(f"{what}: torch {torch.__version__} has no torch.load(weights_only=True); "
                                          f"loading would unpickle. Pass --trust-pickle if you trust this checkpoint")
        return torch.load(src, map_location="cpu", **kwargs)
    try:
        try:
            return torch.load(src, map_location="cpu", weights_only=True, **kwargs)
        except RuntimeError as e:
            if not kwargs or "mmap" not in str(e):
                raise
            kwargs = {}  # a legacy (non-zip) file cannot be mapped: read it
            return torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise FailedPreconditionError(f"{what}: needs full unpickling (torch.load(weights_only=True) refused it: "
                                          f"{_reason(e)}). Pass --trust-pickle if you trust this checkpoint") from e
    except FileNotFoundError as e:
        raise NotFoundError(f"{what}: no such file") from e
    except Exception as e:  # noqa: BLE001 - a truncated or foreign blob
        raise DataLossError(f"{what}: not a torch.save blob ({type(e).__name__}: {_reason(e)})") from e
    if isinstance(src, io.BytesIO):
        src.seek(0)
    try:
        return torch.load(src, map_location="cpu", weights_only=False, **kwargs)
    except Exception as e:  # noqa: BLE001 - even unpickled, not loadable here
        raise DataLossError(f"{what}: cannot be loaded ({type(e).__name__}: {_reason(e)})") from e


class _DistcpFiles:
    """Reads (offset, length) slices of a checkpoint's .distcp files, checking bounds."""

    def __init__(self, root):
        self.root = root
        self._sizes = {}

    def read(self, rel, offset, length, what):
        path = os.path.join(self.root, rel)
        if rel not in self._sizes:
            if not os.path.isfile(path):
                raise NotFoundError(f"{what}: its file '{path}' is missing")
            self._sizes[rel] = os.path.getsize(path)
        if offset < 0 or length < 0 or offset + length > self._sizes[rel]:
            raise DataLossError(f"{what}: bytes [{offset}, {offset + length}) are past the end of '{path}' "
                                f"({self._sizes[rel]} bytes)")
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise DataLossError(f"{what}: short read of '{path}'")
        return data


# -- writing a step in parts ----------------------------------------------------------------------------------

class _StepWriter:
    """A one-process streaming write of one step: whole tensors (all their shards) per part, parts of
    about `part_bytes`; commit() at the end, abort on any error."""

    def __init__(self, root, step, part_bytes, overwrite):
        self.store = Store.open(root, "self")
        try:
            if step is None:
                latest = self.store.latest_step()
                step = 0 if latest is None else latest + 1
            self.step = int(step)
            self.part_bytes = int(part_bytes or DEFAULT_PART_BYTES)
            self.store.begin_step(self.step, overwrite=bool(overwrite))
        except BaseException:
            self.store.close()
            raise
        self._part, self._bytes, self._n = {}, 0, 0
        self.tensors = self.objects = 0

    def add_tensor(self, key, shards, global_shape):
        """shards: [(tensor, global offset)] of tensor `key`, all of it that this step gets."""
        for t, offset in shards:
            self._part[f"t{self._n}"] = ShardedTensor(key, t, t.dtype, tuple(t.shape), tuple(global_shape),
                                                      tuple(offset), (1,) * t.dim())
            self._n += 1
            self._bytes += t.numel() * t.element_size()
        self.tensors += 1
        if self._bytes >= self.part_bytes:
            self.flush()

    def add_object(self, key, value, global_shape=(1,), global_offset=(0,)):
        self._part[f"o{self._n}"] = ShardedObject(key, value, tuple(global_shape), tuple(global_offset))
        self._n += 1
        self.objects += 1

    def flush(self, common=None):
        if self._part or common:
            part = dict(self._part)
            part.update(common or {})
            self.store.put_part(part)
            del part
        self._part, self._bytes = {}, 0
        _release_freed_memory()

    def commit(self, common=None):
        self.flush(common)
        self.store.commit_step()
        return {"step": self.step, "tensors": self.tensors, "objects": self.objects}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        try:
            if exc_type is not None:
                try:
                    self.store.abort_step()
                except Exception:  # noqa: BLE001 - the original error is the one to report
                    pass
        finally:
            self.store.close()
        return False


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
    from .integrations._plain import to_plain
    m = _OBJECT_KEY.match(fqn)
    if not m:
        return fqn, data, (1,), (0,)  # not Megatron's: the bytes, as from_torch_dcp stores them
    value = torch_load(data, f"{source}: sharded object '{fqn}'", trust_pickle)
    if isinstance(value, list) and len(value) == 1:  # Megatron saves torch.save([data])
        value = value[0]
    offset = tuple(int(x) for x in m.group(2).split("."))
    shape = tuple(int(x) for x in m.group(3).split("."))
    try:
        plain = {_MEGATRON_VALUE: to_plain(_without_namespaces(value), fqn)}
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


# -- torch.save per rank --------------------------------------------------------------------------------------

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


# -- out ------------------------------------------------------------------------------------------------------

def _step_of(store, step, root):
    if step is None:
        step = store.latest_step()
        if step is None:
            raise NotFoundError(f"dcp store '{root}' holds no committed step")
    return int(step)


_LIBC = []


def _release_freed_memory():
    """Hands freed heap memory back to the system (glibc). Once glibc has freed one large mmapped block
    it raises its mmap threshold, later tensors come from the heap, and without a trim each tensor read
    after the previous was freed still grows the resident size (measured: an export's peak grew by the
    whole model; with this, by about one tensor)."""
    if not _LIBC:
        import ctypes
        try:
            _LIBC.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _LIBC.append(None)
    if _LIBC[0] is not None:
        _LIBC[0](0)


def _torch_dtype(name):
    for t, n in _tensors._torch_dtype_map().items():
        if n == name:
            return t
    raise InvalidArgumentError(f"dtype {name} has no torch equivalent in torch {_torch().__version__}")


def _objects(store, step, meta):
    """{DCP fqn: value} of the step's objects: an object stored as dcp.integrations.torch stores BYTE_IO
    items (one cell) keeps its key; a Megatron ShardedObject cell becomes KEY/shard_OFFSET_SHAPE, the
    fqn torch_dist gives it, holding [value] (as Megatron saves it)."""
    out = {}
    for o in meta["objects"]:
        key = o["key"]
        if key == "__torch_dcp__":
            continue
        shape, offset = tuple(o["global_shape"]), tuple(o["global_offset"])
        request = {"o": ShardedObject(key, None, shape, offset)}
        store.get(step, request)
        value = request["o"].data
        for wrapper in ("torch_dcp_value", _MEGATRON_VALUE):  # dcp.integrations' plain values
            if isinstance(value, dict) and wrapper in value:
                from .integrations._plain import from_plain
                value = from_plain(value[wrapper])
        if shape == (1,) and offset == (0,):
            out[key] = value
        else:
            out[o["unique_key"]] = [value]
    return out


def _checkpoint_api():
    """(save function, FileSystemWriter, DefaultSavePlanner, WriteItemType) of the running torch: 2.x's
    torch.distributed.checkpoint, or 1.13's torch.distributed._shard.checkpoint (whose dataclasses
    Python 3.11 refuses unless mutable defaults become factories: patched during its import only)."""
    if not OLD_TORCH():
        from torch.distributed.checkpoint import FileSystemWriter, save
        from torch.distributed.checkpoint.default_planner import DefaultSavePlanner
        from torch.distributed.checkpoint.planner import WriteItemType
        return save, FileSystemWriter, DefaultSavePlanner, WriteItemType
    import copy
    import dataclasses
    original = dataclasses.dataclass

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            for name in list(getattr(c, "__annotations__", {})):
                v = c.__dict__.get(name, dataclasses.MISSING)
                if isinstance(v, dataclasses.Field):
                    if v.default is not dataclasses.MISSING and type(v.default).__hash__ is None:
                        default = v.default
                        v.default_factory, v.default = (lambda d=default: copy.deepcopy(d)), dataclasses.MISSING
                elif v is not dataclasses.MISSING and type(v).__hash__ is None:
                    setattr(c, name, dataclasses.field(default_factory=lambda d=v: copy.deepcopy(d)))
            return original(c, **kwargs)
        return wrap if cls is None else wrap(cls)

    if sys.version_info >= (3, 11) and "torch.distributed._shard.checkpoint" not in sys.modules:
        dataclasses.dataclass = dataclass
    try:
        from torch.distributed._shard.checkpoint import FileSystemWriter, save_state_dict
        from torch.distributed._shard.checkpoint.default_planner import DefaultSavePlanner
        from torch.distributed._shard.checkpoint.planner import WriteItemType
    finally:
        dataclasses.dataclass = original
    return save_state_dict, FileSystemWriter, DefaultSavePlanner, WriteItemType


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
