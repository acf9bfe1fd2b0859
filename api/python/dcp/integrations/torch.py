"""dcp as a ``torch.distributed.checkpoint`` (DCP) storage, torch >= 2.4.

One line changes in an FSDP2 / DTensor / torchtitan job::

    import torch.distributed.checkpoint as dist_cp
    from dcp.integrations.torch import StorageWriter, StorageReader, SavePlanner, LoadPlanner

    dist_cp.save(state_dict, storage_writer=StorageWriter("/ckpt/run1"), planner=SavePlanner())
    dist_cp.load(state_dict, storage_reader=StorageReader("/ckpt/run1"), planner=LoadPlanner())

``checkpoint_id`` (or the ``path`` argument) is a dcp store; it holds many
steps. A save writes the step ``step`` (default: the one after the latest)
and a load reads ``step`` (default: the latest). A chunk equal to the one the
previous step holds at the same place is referenced, not rewritten.

Step directories (torchtitan's layout, one directory per checkpoint:
``checkpoint_id=<folder>/step-100``): a ``checkpoint_id`` named
``step-<n>`` that is not itself a dcp store is step n of the store
``<folder>/dcp_store``, which consecutive checkpoints share. The directory gets
``dcp.json`` (the store, relative to it, and the step) and a ``.metadata`` with
the same JSON, which tools that find DCP checkpoints by that file see
(torchtitan's resume picks the latest ``step-<n>`` that has one; DCP's
``FileSystemReader`` refuses it as not a pickle); a load of the directory reads
the step it names. Removing a step directory (torchtitan's ``keep_latest_k``)
releases its step: the next save through a step directory deletes the steps
that were saved into a step directory no directory next to the store points to
any more, and reclaims their space (``last_deleted_steps``). Steps saved into
the store path itself are never deleted that way.

How DCP's pieces map onto dcp:

* TENSOR / SHARD write items are chunk records of the tensor ``fqn`` at the
  item's global offset (dcp cuts large items into its own chunks);
* BYTE_IO items are dcp objects ``fqn``: the bytes DCP's default planner
  makes (``torch.save``), or, with :class:`SavePlanner`, the value itself as
  dcp's plain-value encoding -- never pickle;
* the step commits at the end of ``write_data``: dcp's put is collective and
  atomic (every rank's data, or nothing), so DCP's ``finish`` on the
  coordinator only checks the committed step against DCP's ``Metadata``;
* ``read_metadata`` rebuilds DCP's ``Metadata`` from dcp's manifest (nothing
  is unpickled); each tensor is one storage chunk covering all of it, and
  ``read_data`` asks dcp for exactly the regions DCP's planner wants, in one
  collective load that verifies every byte.

Collectives run over ``group`` (default: torch.distributed's default group).
Under ``async_save`` (thread executor) pass the same dedicated gloo group to
``async_save`` and to the writer, so that the background save never shares a
group with training collectives; the process executor sends the writer to its
checkpointing processes without the group, where it uses their own one.
"""

import dataclasses
import io
import os

import torch
from torch.distributed.checkpoint import planner as _planner
from torch.distributed.checkpoint import storage as _storage
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner, DefaultSavePlanner
from torch.distributed.checkpoint.metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata,
                                                   StorageMeta, TensorProperties, TensorStorageMetadata)
from torch.futures import Future

from .. import _dcp, _state, _tensors
from . import _layout
from .._plain import to_plain
from ..errors import DcpError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError
from ..mapping import ShardedObject, ShardedTensor
from ..store import Store

if not hasattr(_storage.StorageWriter, "reset"):
    raise ImportError(f"dcp.integrations.torch needs torch >= 2.4 (this is torch {torch.__version__})")

__all__ = ["LoadPlanner", "SavePlanner", "StorageReader", "StorageWriter"]

# The object holding what DCP's Metadata has and dcp's manifest lacks
# (the planner's flattening map), written by rank 0.
_EXTRAS_KEY = _state.TORCH_DCP_KEY
# A value stored by SavePlanner: {_VALUE: value}, tuples as {_TUPLE: [...]}.
_VALUE = "torch_dcp_value"
_MARKER = "DCP_STORE"
_STEP_DIR = r"step-(\d+)"  # torchtitan's checkpoint directories
_DCP_MARKER = ".metadata"  # what tools that look for DCP checkpoints probe for
_PUT_OPTIONS = ("overwrite", "chunk_bytes", "compression", "incremental", "encode_threads")
_GET_OPTIONS = ("read_threads", "max_inflight_bytes", "read_once")


# -- plain values ---------------------------------------------------------------------------------------------

def _check_plain(x, fqn):
    """Refuses (TypeError naming fqn, with the way out) a value only pickle can store; returns it."""
    to_plain(x, fqn, f"Pass SavePlanner(allow_pickle=['{fqn}']) to pickle it anyway")
    _dcp.encode_value(_state.to_stored(x, (fqn,)), fqn)  # what the core cannot store, named here
    return x


@dataclasses.dataclass
class _PlainValue:
    """What SavePlanner.resolve_data gives for a BYTE_IO item instead of torch.save's bytes."""

    plain: object


@dataclasses.dataclass
class _Extras:
    """prepare_global_plan's note to rank 0: the merged planner data."""

    planner_data: object


class SavePlanner(DefaultSavePlanner):
    """DCP's default save planner, except that non-tensor values (optimizer ``param_groups``,
    scheduler state, counters) are stored as dcp's plain values instead of ``torch.save`` bytes.
    A value that only pickle can store is a TypeError naming its fqn, unless the fqn is in
    ``allow_pickle``."""

    def __init__(self, *args, allow_pickle=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_pickle = frozenset(allow_pickle)

    def transform_object(self, write_item, object):  # noqa: A002 - DCP's signature
        if write_item.type != _planner.WriteItemType.BYTE_IO or write_item.index.fqn in self.allow_pickle:
            return super().transform_object(write_item, object)
        fqn = write_item.index.fqn
        return _PlainValue({_VALUE: _check_plain(object, fqn)})


class LoadPlanner(DefaultLoadPlanner):
    """DCP's default load planner that never unpickles: values stored by :class:`SavePlanner`
    come back as they were; bytes made by ``torch.save`` (DCP's default planner) are refused
    with a TypeError naming the fqn unless it is in ``allow_pickle``."""

    def __init__(self, *args, allow_pickle=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_pickle = frozenset(allow_pickle)

    def load_value(self, read_item, value):
        """Puts a plain value where load_bytes would put the unpickled one."""
        fqn = read_item.dest_index.fqn
        if self.flatten_state_dict:
            from torch.distributed.checkpoint._traverse import set_element
            set_element(self.original_state_dict, self.mappings[fqn], value)
        else:
            self.state_dict[fqn] = value

    def load_bytes(self, read_item, value):
        fqn = read_item.dest_index.fqn
        if fqn not in self.allow_pickle:
            raise TypeError(f"'{fqn}' was saved pickled (torch.save, by DCP's default SavePlanner); loading it "
                            f"would unpickle. Pass LoadPlanner(allow_pickle=['{fqn}']) if you trust this checkpoint")
        super().load_bytes(read_item, value)


# -- the store ------------------------------------------------------------------------------------------------

def _is_store(path):
    return os.path.isfile(os.path.join(path, _MARKER))


def _explain(path, error):
    """A clearer error for a path that is not a dcp store."""
    if isinstance(error, FailedPreconditionError) and os.path.isfile(os.path.join(path, ".metadata")):
        return FailedPreconditionError(
            f"'{path}' is a PyTorch distributed checkpoint (FileSystemWriter's .metadata and .distcp files), not a "
            f"dcp store: read it with torch.distributed.checkpoint.FileSystemReader")
    return error


def _open(path, group, **kwargs):
    try:
        return Store.open(path, group, **kwargs)
    except DcpError as e:
        raise _explain(path, e) from e


def _options(given, allowed, what):
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"{what} got unknown options {unknown}; it takes {list(allowed)}")
    return dict(given)


def _communicator(group, collective):
    """dcp's communicator for a torch group (None: the default one), or "self" outside a job."""
    import torch.distributed as dist
    if group == "self" or not collective or not (dist.is_available() and dist.is_initialized()):
        return "self"
    from ..comm import TorchCommunicator
    return TorchCommunicator(group)


_ERROR_TYPES = {c.__name__: c for c in (TypeError, ValueError, KeyError, RuntimeError, AssertionError,
                                        NotImplementedError)}


def _agreed(comm, prepare):
    """Runs this rank's `prepare()`, then agrees with the other ranks before any collective that
    follows: if one rank failed, every rank raises the same error (the lowest failing rank's type
    and message, naming that rank) instead of the others waiting in a collective it never joins."""
    try:
        result, error = prepare(), None
    except Exception as e:  # noqa: BLE001 - every error is reported on every rank
        result, error = None, e
    if comm == "self":
        if error is not None:
            raise error
        return result
    mine = b"" if error is None else f"{type(error).__name__}\0{error}".encode()
    for rank, message in enumerate(comm.allgather(mine)):
        if message:
            name, _, text = message.decode(errors="replace").partition("\0")
            from .. import errors
            cls = getattr(errors, name, None) if name.endswith("Error") and name != "error_class" else None
            cls = cls if isinstance(cls, type) and issubclass(cls, Exception) else _ERROR_TYPES.get(name, RuntimeError)
            if cls is TypeError:
                cls = errors.InvalidTypeError  # a TypeError too, as dcp's own calls raise it
            raise cls(f"rank {rank}: {text}") from error
    return result


class _OnStore:
    """What the writer and the reader share: a store path, a step, a group and dcp's options."""

    def _init_store(self, path, step, group, options, allowed, what):
        self.path = None if path is None else os.fspath(path)
        self.step = None if step is None else int(step)
        self.group = group
        self.options = _options(options, allowed, what)
        self._comm = None  # dcp's communicator over `group`, made by the first collective call
        self._store_path = self.path  # the store the path is, or the one its step directory shares

    def __getstate__(self):
        # async_save's process executor sends the writer to a process with its own default group.
        state = dict(self.__dict__)
        state["group"] = state["_comm"] = None
        return state

    @property
    def checkpoint_id(self):
        return self.path

    def _set_path(self, checkpoint_id):
        if checkpoint_id is not None:
            self.path = os.fspath(checkpoint_id)


class StorageWriter(_OnStore, _storage.StorageWriter):
    """Writes DCP saves as steps of the dcp store at `path` (see the module docstring).

    `step`: the step each save writes (default: the one after the latest). `group`: the
    torch.distributed group of the save (default: the default group). Options as
    dcp.Store.put: overwrite, chunk_bytes, compression, incremental, encode_threads.
    After a save, ``last_step`` and ``last_report`` (this rank's dcp.SaveReport) say what
    was written and what was referenced instead."""

    def __init__(self, path=None, *, step=None, group=None, **options):
        super().__init__()
        self._init_store(path, step, group, options, _PUT_OPTIONS, "StorageWriter")
        self.last_step = None
        self.last_report = None
        self.last_deleted_steps = []
        self._coordinator = False
        self._directory = None

    def reset(self, checkpoint_id=None):
        self._set_path(checkpoint_id)
        self.last_step = None
        self.last_report = None
        self.last_deleted_steps = []

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id):
        path = os.fspath(checkpoint_id)
        return _is_store(path) or _layout.has_pointer(path) or not os.path.exists(path) or \
            (os.path.isdir(path) and not os.listdir(path))

    def _target(self):
        """(store path, step or None, step directory or None) of the next save."""
        if _is_store(self.path):
            return os.path.abspath(self.path), self.step, None
        store, step, is_dir = _layout.location(self.path, _STEP_DIR)
        if not is_dir:
            return os.path.abspath(self.path), self.step, None
        if os.path.isfile(os.path.join(self.path, _DCP_MARKER)) and not _layout.has_pointer(self.path):
            raise FailedPreconditionError(
                f"'{self.path}' holds a PyTorch distributed checkpoint (FileSystemWriter's .metadata): dcp "
                f"does not write over it; remove it or save into another directory")
        return store, self.step if self.step is not None else step, os.path.abspath(self.path)

    def storage_meta(self):
        return StorageMeta(checkpoint_id=self.path)

    def set_up_storage_writer(self, is_coordinator, *args, **kwargs):
        if not kwargs.get("use_collectives", True):
            raise InvalidArgumentError("dcp commits a step collectively: save with use_collectives=True")
        if self.path is None:
            raise InvalidArgumentError("no dcp store given: pass StorageWriter(path) or checkpoint_id=")
        self._coordinator = bool(is_coordinator)

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        # With DCP's plan caching a rank whose plan did not change sends it without its planner
        # data: that rank's data from the save that last brought it is used.
        by_rank = self._planner_data_by_rank = getattr(self, "_planner_data_by_rank", {})
        merged = {}
        for rank, p in enumerate(plans):
            if isinstance(p.planner_data, dict):
                by_rank[rank] = p.planner_data
            merged.update(by_rank.get(rank, {}) if p.planner_data is None else
                          p.planner_data if isinstance(p.planner_data, dict) else {})
        if plans:
            plans = list(plans)
            plans[0] = dataclasses.replace(plans[0], storage_data=_Extras(merged))
        return plans

    def write_data(self, plan, planner):
        comm = self._comm = self._comm or _communicator(self.group, True)

        def prepare():
            self._store_path, step, self._directory = self._target()
            os.makedirs(os.path.dirname(self._store_path) or "/", exist_ok=True)
            with torch.no_grad():  # DTensor.to_local() (in resolve_data) is an autograd call where grad is on
                return self._state_to_save(plan, planner) + (step,)
        state, results, step = _agreed(comm, prepare)
        self.last_deleted_steps = []
        with _open(self._store_path, comm) as store:
            # Rank 0's view at open on every rank, whatever its own step (its error too).
            latest = store.latest_step_at_open()
            step = step if step is not None else 0 if latest is None else latest + 1
            options = dict(self.options)
            if self._directory is not None and \
                    _layout.replaces_released(store, comm, self._store_path, step, self._directory):
                options["overwrite"] = True
            self.last_report = store.put(step, state, **options)
            if self._directory is not None:
                _agreed(comm, lambda: store.rank == 0 and _layout.write_pointer(
                    self._directory, self._store_path, step, also=(_DCP_MARKER,)))
                self.last_deleted_steps = _layout.release_removed(store, comm, self._store_path, step,
                                                                  self._directory)
        self.last_step = step
        future = Future()
        future.set_result([dataclasses.replace(r, storage_data=step) for r in results])
        return future

    def _state_to_save(self, plan, planner):
        """This rank's plan as a dcp sharded state dict, and its WriteResults."""
        state, results = {}, []
        for i, item in enumerate(plan.items):
            fqn = item.index.fqn
            if item.type == _planner.WriteItemType.BYTE_IO:
                data = planner.resolve_data(item)
                data = data.plain if isinstance(data, _PlainValue) else data.getvalue()
                state[f"b{i}"] = ShardedObject(fqn, data, (1,), (0,))
                size = len(data) if isinstance(data, bytes) else 0
            else:
                tensor = planner.resolve_data(item).detach()
                chunk = item.tensor_data.chunk
                if tuple(tensor.shape) != tuple(chunk.sizes):
                    raise InvalidArgumentError(f"'{fqn}': the planner resolved a tensor of shape "
                                               f"{tuple(tensor.shape)} for a chunk of {tuple(chunk.sizes)}")
                try:
                    state[f"t{i}"] = ShardedTensor(fqn, tensor, tensor.dtype, tuple(chunk.sizes),
                                                   tuple(item.tensor_data.size), tuple(chunk.offsets),
                                                   (1,) * tensor.dim())
                except DcpError as e:
                    raise type(e)(f"'{fqn}': {e}") from e
                size = tensor.numel() * tensor.element_size()
            results.append(_storage.WriteResult(index=item.index, size_in_bytes=size, storage_data=None))
        if isinstance(plan.storage_data, _Extras):
            # The coordinator's planner holds the save's merged planner data where it is DCP's
            # default planner: complete and current also under plan caching, where a rank whose
            # plan did not change sends none, and where rank 0's own final plan (and the note
            # prepare_global_plan left on it) may come from DCP's cache of an earlier save.
            data = getattr(getattr(planner, "metadata", None), "planner_data", None)
            if not isinstance(data, dict):
                data = plan.storage_data.planner_data
            state["x"] = ShardedObject(_EXTRAS_KEY, {"planner_data": _check_plain(data, "planner_data")}, (1,), (0,))
            if self._directory is not None:
                state["d"] = _layout.directory_object(self._directory)
        return state, results

    def finish(self, metadata, results):
        steps = {r.storage_data for rank in results for r in rank} | {self.last_step}
        if len(steps) != 1:
            raise InternalError(f"ranks wrote different steps {sorted(steps)} of '{self._store_path}'")
        step = self.last_step
        with _open(self._store_path, "self", read_only=True, create_if_missing=False) as store:
            meta = store.metadata(step)
        tensors = {t["key"]: t for t in meta["tensors"]}
        objects = {o["key"] for o in meta["objects"]}
        for fqn, md in metadata.state_dict_metadata.items():
            if isinstance(md, TensorStorageMetadata):
                t = tensors.get(fqn)
                want = _tensors.dtype_name(md.properties.dtype)
                if t is None or t["dtype"] != want or tuple(t["global_shape"]) != tuple(md.size):
                    raise InternalError(f"step {step} of '{self._store_path}' does not hold tensor '{fqn}' "
                                        f"({want}, {tuple(md.size)}) as DCP's metadata says")
            elif fqn not in objects:
                raise InternalError(f"step {step} of '{self._store_path}' does not hold the value '{fqn}'")


class StorageReader(_OnStore, _storage.StorageReader):
    """Reads DCP loads from step `step` (default: the latest) of the dcp store at `path`.

    `group`: the torch.distributed group of the load (default: the default group).
    Options as dcp.Store.get: read_threads, max_inflight_bytes, read_once."""

    def __init__(self, path=None, *, step=None, group=None, **options):
        super().__init__()
        self._init_store(path, step, group, options, _GET_OPTIONS, "StorageReader")
        self._reset_state()

    def _reset_state(self):
        self._metadata = None
        self._read_step = None
        self._error = None
        self._collective = True

    def reset(self, checkpoint_id=None):
        self._set_path(checkpoint_id)
        self._reset_state()

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id):
        path = os.fspath(checkpoint_id)
        return _is_store(path) or _layout.has_pointer(path)

    def _source(self):
        """(store path, step or None) of the load: the store, or the step a step directory names."""
        if _is_store(self.path) or not _layout.has_pointer(self.path):
            return self.path, self.step
        store, step = _layout.read_pointer(self.path)
        if self.step is not None and self.step != step:
            raise InvalidArgumentError(f"'{self.path}' holds step {step} of '{store}', not step {self.step}: "
                                       f"pass StorageReader(step=None) or the store's path")
        return store, step

    def read_metadata(self, *args, **kwargs):
        """DCP's Metadata of the step, rebuilt from dcp's manifest.

        torch's loader swallows what this raises and retries with ``rank=``, then fails with
        a bare assertion; on that retry the error is kept and raised by
        set_up_storage_reader instead, so every rank reports dcp's own error."""
        if "rank" in kwargs and self._error is not None:
            return Metadata(state_dict_metadata={})  # the retry after a failure: set_up_storage_reader raises
        self._metadata = None  # each load reads the store again: `step=None` means the latest now
        self._error = None
        try:
            return self._load_metadata()
        except Exception as e:
            self._error = e
            if "rank" not in kwargs:
                raise
            return Metadata(state_dict_metadata={})

    def _load_metadata(self):
        if self._metadata is not None:
            return self._metadata
        if self.path is None:
            raise InvalidArgumentError("no dcp store given: pass StorageReader(path) or checkpoint_id=")
        self._store_path, step = self._source()
        with _open(self._store_path, "self", read_only=True, create_if_missing=False) as store:
            if step is None:
                step = store.latest_step()
                if step is None:
                    raise NotFoundError(f"dcp store '{self._store_path}' holds no committed step")
            meta = store.metadata(step)
            extras = {}
            if any(o["key"] == _EXTRAS_KEY for o in meta["objects"]):
                request = {"x": ShardedObject(_EXTRAS_KEY, None, (1,), (0,))}
                store.get(step, request)
                extras = request["x"].data if isinstance(request["x"].data, dict) else {}
        sd = {}
        for t in meta["tensors"]:
            size = torch.Size(t["global_shape"])
            sd[t["key"]] = TensorStorageMetadata(
                properties=TensorProperties(dtype=_torch_dtype(t["dtype"])), size=size,
                chunks=[ChunkStorageMetadata(offsets=torch.Size([0] * len(size)), sizes=size)])
        for o in meta["objects"]:
            if o["key"] not in _state.BOOKKEEPING_KEYS:
                sd[o["key"]] = BytesStorageMetadata()
        self._read_step = step
        self._metadata = Metadata(state_dict_metadata=sd, planner_data=extras.get("planner_data"),
                                  storage_data={"dcp_step": step},
                                  storage_meta=StorageMeta(checkpoint_id=self.path))
        return self._metadata

    def set_up_storage_reader(self, metadata, is_coordinator, *args, **kwargs):
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._collective = kwargs.get("use_collectives", True)

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        return plans

    def read_data(self, plan, planner):
        comm = self._comm = self._comm or _communicator(self.group, True)
        comm = comm if self._collective else "self"
        with torch.no_grad():  # DTensor.to_local() (in resolve_tensor) is an autograd call where grad is on
            request, tensors, values = _agreed(comm, lambda: self._request(plan, planner))
        if comm != "self":
            steps = sorted({int(s) for s in comm.allgather(str(self._read_step).encode())})
            if len(steps) > 1:
                raise FailedPreconditionError(
                    f"ranks read different steps {steps} of '{self._store_path}' (a save committed while the "
                    f"load started): pass StorageReader(step=...)")
        with _open(self._store_path, comm, read_only=True, create_if_missing=False) as store:
            store.get(self._read_step, request, **self.options)
        for item, dest, buf in tensors:
            if buf is not dest:
                dest.copy_(buf)
            planner.commit_tensor(item, dest)
        for item, name in values:
            _deliver(planner, item, request[name].data)
        future = Future()
        future.set_result(None)
        return future

    def _request(self, plan, planner):
        """This rank's reads as a dcp request: (request, [(item, destination, buffer)], [(item, name)])."""
        metadata = self._load_metadata()
        request, tensors, values = {}, [], []
        for i, item in enumerate(plan.items):
            fqn = item.storage_index.fqn
            if item.type == _planner.LoadItemType.BYTE_IO:
                request[f"b{i}"] = ShardedObject(fqn, None, (1,), (0,))
                values.append((item, f"b{i}"))
                continue
            md = metadata.state_dict_metadata[fqn]
            dest = planner.resolve_tensor(item).detach()
            lengths = tuple(item.lengths)
            if tuple(dest.shape) != lengths:
                raise InvalidArgumentError(f"'{fqn}': the planner resolved a tensor of shape {tuple(dest.shape)} "
                                           f"for a read of {lengths}")
            chunk = item.storage_index.offset or (0,) * len(lengths)
            origin = tuple(c + o for c, o in zip(chunk, item.storage_offsets))
            # dcp loads exactly the stored dtype; DCP casts into the destination (as FileSystemReader does).
            # So does a destination dcp cannot write in place and copy_ can: a lazily conjugated or
            # negated view (its memory is not its values).
            direct = dest.dtype == md.properties.dtype and not _tensors.is_lazy_view(dest)
            buf = dest if direct else torch.empty(lengths, dtype=md.properties.dtype)
            request[f"t{i}"] = ShardedTensor(fqn, buf, buf.dtype, lengths, tuple(md.size), origin, (1,) * len(lengths))
            tensors.append((item, dest, buf))
        return request, tensors, values


def _deliver(planner, item, data):
    if isinstance(data, dict) and _VALUE in data:
        value = data[_VALUE]
        if hasattr(planner, "load_value"):
            planner.load_value(item, value)
            return
        buf = io.BytesIO()  # a planner that expects torch.save bytes: made here from a plain value
        torch.save(value, buf)
        buf.seek(0)
        planner.load_bytes(item, buf)
        return
    if not isinstance(data, (bytes, bytearray)):
        raise InternalError(f"'{item.storage_index.fqn}': stored value of unexpected type {type(data).__name__}")
    planner.load_bytes(item, io.BytesIO(data))


def _torch_dtype(name):
    for t, n in _tensors._torch_dtype_map().items():
        if n == name:
            return t
    raise InvalidArgumentError(f"dtype {name} has no torch equivalent in torch {torch.__version__}")
