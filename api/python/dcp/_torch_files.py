"""Reading PyTorch's checkpoint files without running their code, and writing a dcp step in parts: the
pieces dcp.convert's torch converters share (see _convert_torch).

* ``.metadata`` (a pickled DCP ``Metadata``) is read by an unpickler that knows only DCP's metadata
  classes -- as inert stand-ins, so no torch code runs -- torch dtypes, ``torch.Size`` and builtin
  containers, and refuses every other global naming it;
* ``torch.save`` blobs are loaded with ``weights_only=True``; one that needs full unpickling is refused
  unless the caller trusts it (``trust_pickle``);
* a step is written as one streaming write (``begin_step``, ``put_part``, ``commit_step``) of whole
  tensors per part, aborted on any error.
"""

import io
import os
import pickle
import re
import sys

from . import _tensors
from .errors import DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from .mapping import ShardedObject, ShardedTensor
from .store import Store

DEFAULT_PART_BYTES = 256 << 20


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
    refused (naming `what`) unless `trust_pickle`. What weights_only admits is torch's allow-list
    plus the types this process added (torch.serialization.add_safe_globals; importing megatron.core
    adds Megatron's `args` and RNG state types): their reconstruction runs no code of the file's.
    `mmap` (a path, torch >= 2.1, zip format): the tensors stay in the file until used."""
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


# -- the way out ----------------------------------------------------------------------------------------------

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
