"""dcp as a Megatron-Core ``dist_checkpointing`` backend (megatron-core 0.16).

One line changes in a Megatron-LM job::

    from dcp.integrations.megatron import DcpSaveShardedStrategy, DcpLoadShardedStrategy
    dist_checkpointing.save(sd, ckpt_dir, sharded_strategy=DcpSaveShardedStrategy())
    dist_checkpointing.load(sd, ckpt_dir, sharded_strategy=DcpLoadShardedStrategy())

or :func:`install` once, after which a plain ``dist_checkpointing.load`` of a
directory dcp wrote picks dcp by itself (``metadata.json`` names backend ``dcp``).

Layout. Megatron writes each iteration into its own directory
(``<save>/iter_0000100``). The tensors and ShardedObjects of consecutive
iterations go into one dcp store next to them, ``<save>/dcp_store``, as step
100, 200, ... -- so a chunk that did not change since the previous iteration
is referenced, not rewritten. The iteration directory keeps what Megatron
writes itself (``metadata.json``, ``common.pt`` from its common strategy) and
``dcp.json``, which names the store (relative to the directory) and the step.
A directory not named ``iter_<n>`` gets its own store inside it
(``<dir>/dcp_store``, step 0 or the next one). ``store=`` and ``step=`` override
both. Removing an iteration directory releases its step: the next save into an
iteration directory deletes the steps saved into iteration directories that no
directory next to the store points to any more, and reclaims their space
(``last_deleted_steps``); a store given with ``store=`` elsewhere is not
watched (use ``dcp.Store.delete_step`` / ``apply_retention`` and
``collect_garbage`` there).

ShardedObject data is stored as dcp's plain values (tuples kept, see
``_plain``), never pickled; an object that only pickle can store is a
TypeError naming its key.
"""

import os

import torch
from megatron.core.dist_checkpointing import mapping as _mc
from megatron.core.dist_checkpointing.mapping import CheckpointingException
from megatron.core.dist_checkpointing.strategies import base as _base
from megatron.core.dist_checkpointing.strategies.async_utils import AsyncRequest

from .. import _dcp, _state, _tensors
from ..errors import DataLossError, NotFoundError
from ..mapping import ShardedObject, ShardedTensor
from ..store import Store
from . import _layout
from .._plain import to_plain
from .torch import _agreed, _communicator, _open

__all__ = ["BACKEND", "DcpLoadShardedStrategy", "DcpSaveShardedStrategy", "VERSION", "install"]

BACKEND = "dcp"
VERSION = 1
POINTER = _layout.POINTER  # in the iteration directory: {"store": <path relative to it>, "step": <int>}
STORE_DIR = _layout.STORE_DIR
_ITERATION = r"iter_(\d+)"
_VALUE = "megatron_dcp_value"


def _location(checkpoint_dir, store, step):
    """(store path, step or None, whether it is an iteration directory) for a save into `checkpoint_dir`."""
    return _layout.location(checkpoint_dir, _ITERATION, store, step)


def _pointer(checkpoint_dir):
    """(store path, step) a dcp-written iteration directory points to."""
    try:
        return _layout.read_pointer(checkpoint_dir)
    except (NotFoundError, DataLossError) as e:
        raise CheckpointingException(str(e)) from None


# -- Megatron's objects <-> dcp's ---------------------------------------------------------------------------------

def _to_dcp(node, load):
    """A Megatron sharded state dict (dicts, lists, Megatron ShardedTensor / ShardedObject
    leaves) as dcp's, same structure; other leaves are dropped (Megatron keeps them)."""
    if isinstance(node, dict):
        return {k: _to_dcp(v, load) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_dcp(v, load) for v in node]
    if isinstance(node, _mc.ShardedTensor):
        return ShardedTensor(node.key, node.data, node.dtype, tuple(node.local_shape), tuple(node.global_shape),
                             tuple(node.global_offset), node.axis_fragmentations, node.replica_id,
                             node.prepend_axis_num, bool(node.allow_shape_mismatch),
                             getattr(node, "flattened_range", None))
    if isinstance(node, _mc.ShardedObject):
        data = None if load or node.data is None else {_VALUE: node.data}
        if data is not None:  # what dcp cannot encode is refused here, before any collective
            to_plain(node.data, node.unique_key)
            _dcp.encode_value(_state.to_stored(data, (node.unique_key,)), node.unique_key)
        return ShardedObject(node.key, data, tuple(node.global_shape), tuple(node.global_offset), node.replica_id)
    raise TypeError(f"the sharded strategy got a {type(node).__qualname__}; Megatron passes only "
                    "ShardedTensor and ShardedObject leaves")


def _loaded(node):
    """The load result: dcp's leaves -> their data (object values decoded)."""
    if isinstance(node, dict):
        return {k: _loaded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_loaded(v) for v in node]
    if isinstance(node, ShardedObject):
        return node.data[_VALUE] if isinstance(node.data, dict) and _VALUE in node.data else node.data
    return node.data


class DcpSaveShardedStrategy(_base.AsyncSaveShardedStrategy):
    """Saves Megatron's ShardedTensors and ShardedObjects as a step of a dcp store (see the module
    docstring for where). Options as dcp.Store.put: overwrite, chunk_bytes, compression,
    incremental, encode_threads. ``last_report`` is this rank's dcp.SaveReport."""

    def __init__(self, backend=BACKEND, version=VERSION, *, store=None, step=None, group=None, **options):
        super().__init__(backend, version)
        self.store, self.step, self.group = store, step, group
        self.options = options
        self.last_report = None
        self.last_step = None
        self.last_deleted_steps = []

    @property
    def can_handle_sharded_objects(self):
        return True

    def _begin(self, sharded_state_dict, checkpoint_dir):
        comm = self._comm = getattr(self, "_comm", None) or _communicator(self.group, True)

        def prepare():
            path, step, iteration = _location(checkpoint_dir, self.store, self.step)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return _to_dcp(sharded_state_dict, load=False), path, step, iteration
        state, path, step, iteration = _agreed(comm, prepare)
        store = _open(path, comm)
        try:
            # Rank 0's view at open on every rank, whatever its own step (its error too).
            latest = store.latest_step_at_open()
            step = step if step is not None else 0 if latest is None else latest + 1
            # Only a directory next to the store is watched (release_removed): a store given elsewhere is not.
            iteration = iteration and _layout.next_to_store(path, checkpoint_dir)
            options = dict(self.options)
            if iteration:
                if store.rank == 0:
                    state[_layout.DIRECTORY_KEY] = _layout.directory_object(checkpoint_dir)
                if _layout.replaces_released(store, comm, path, step, checkpoint_dir):
                    options["overwrite"] = True
        except BaseException:
            store.close()
            raise
        return store, path, step, state, iteration, options

    def _finish(self, store, path, step, checkpoint_dir, iteration):
        """Rank 0 writes dcp.json; every rank raises if that failed (Megatron's barrier follows).
        Then the steps of removed iteration directories go."""
        _agreed(self._comm, lambda: self._write_pointer(store, path, step, checkpoint_dir))
        self.last_step = step
        self.last_deleted_steps = []
        if iteration:
            self.last_deleted_steps = _layout.release_removed(store, self._comm, path, step, checkpoint_dir)

    def _write_pointer(self, store, path, step, checkpoint_dir):
        if store.rank == 0:
            _layout.write_pointer(checkpoint_dir, path, step)

    def save(self, sharded_state_dict, checkpoint_dir):
        store, path, step, state, iteration, options = self._begin(sharded_state_dict, checkpoint_dir)
        with store:
            self.last_report = store.put(step, state, **options)
            self._finish(store, path, step, checkpoint_dir, iteration)

    def async_save(self, sharded_state_dict, checkpoint_dir):
        """Starts dcp's own background put (it returns once this rank's tensors are copied) and
        hands Megatron a request whose finalization waits for it and writes dcp.json. The request
        has no async_fn (the write already runs, in dcp's thread, not in a process Megatron forks),
        so Megatron finalizes it at its next maybe_finalize_async_calls: training overlaps the write
        until then, and that call waits for what is left of it."""
        store, path, step, state, iteration, options = self._begin(sharded_state_dict, checkpoint_dir)
        try:
            store.put_async(step, state, **options)
        except BaseException:
            store.close()
            raise

        def finalize():
            try:
                self.last_report = store.wait()
                self._finish(store, path, step, checkpoint_dir, iteration)
            finally:
                store.close()

        return AsyncRequest(async_fn=None, async_fn_args=(), finalize_fns=[finalize])


class DcpLoadShardedStrategy(_base.LoadShardedStrategy):
    """Loads Megatron's ShardedTensors (in place into their data, allocated if None) and
    ShardedObjects from the step a dcp-written directory points to, in any layout.
    Options as dcp.Store.get: read_threads, max_inflight_bytes, read_once."""

    def __init__(self, *, group=None, **options):
        super().__init__()
        self.group = group
        self.options = options

    @property
    def can_handle_sharded_objects(self):
        return True

    def check_backend_compatibility(self, loaded_backend):
        if loaded_backend != BACKEND:
            raise CheckpointingException(
                f"this checkpoint's sharded backend is {loaded_backend!r}, not 'dcp': it is Megatron's own "
                f"format ('torch_dist' is PyTorch's distributed checkpoint files); load it with Megatron's "
                f"default strategy (sharded_strategy=None), or bring it into a dcp store with "
                f"`python3 -m dcp.convert from-torch-dist STORE DIR`")

    def check_version_compatibility(self, loaded_version):
        if int(loaded_version) > VERSION:
            raise CheckpointingException(f"dcp backend version {loaded_version} is newer than this dcp's "
                                         f"({VERSION})")

    def load(self, sharded_state_dict, checkpoint_dir):
        comm = self._comm = getattr(self, "_comm", None) or _communicator(self.group, True)
        request, path, step = _agreed(comm, lambda: (_to_dcp(sharded_state_dict, load=True),)
                                      + _pointer(checkpoint_dir))
        with _open(path, comm, read_only=True, create_if_missing=False) as store:
            store.get(step, request, **self.options)
        return _loaded(request)

    def _metadata(self, checkpoint_dir):
        path, step = _pointer(checkpoint_dir)
        with _open(path, "self", read_only=True, create_if_missing=False) as store:
            return store.metadata(step)

    def load_tensors_metadata(self, checkpoint_dir):
        out = {}
        for t in self._metadata(checkpoint_dir)["tensors"]:
            dtype = next((d for d, n in _tensors._torch_dtype_map().items() if n == t["dtype"]), None)
            if dtype is None:
                raise CheckpointingException(f"tensor '{t['key']}' has dtype {t['dtype']}, which torch "
                                             f"{torch.__version__} lacks")
            out[t["key"]] = _mc.ShardedTensor.from_rank_offsets(
                t["key"], torch.empty(t["global_shape"], dtype=dtype, device="meta")).without_data()
        return out

    def load_sharded_metadata(self, checkpoint_dir):
        meta = self._metadata(checkpoint_dir)
        out = self.load_tensors_metadata(checkpoint_dir)
        for o in meta["objects"]:
            if o["key"] in _state.BOOKKEEPING_KEYS:
                continue
            obj = _mc.ShardedObject(o["key"], None, tuple(o["global_shape"]), tuple(o["global_offset"]),
                                    replica_id=0)
            out[obj.unique_key] = obj
        return out

    def remove_sharded_tensors(self, checkpoint_dir, key_prefix):
        """Removes the tensors whose key starts with `key_prefix` from the step (this process
        alone, like Megatron's torch_dist strategy)."""
        path, step = _pointer(checkpoint_dir)
        with Store.open(path, "self", create_if_missing=False) as store:
            removed = store.remove_tensors(step, key_prefix)
        if not removed:
            import warnings
            warnings.warn(f"no tensor of step {step} in {path} starts with '{key_prefix}'", stacklevel=2)
        return removed


def install():
    """Registers dcp's strategies in Megatron-Core's strategy registry as the load strategy for
    backend 'dcp' (version 1) and a save strategy reachable as ('dcp', 1), so that a plain
    ``dist_checkpointing.load`` of a dcp-written directory picks dcp, and
    ``save(..., sharded_strategy=('dcp', 1))`` works. Megatron-Core versions without the
    registry (it was removed after 0.16) raise ImportError: pass the strategies explicitly there."""
    if not hasattr(_base, "register_default_strategy"):
        raise ImportError("this megatron-core has no strategy registry: pass sharded_strategy="
                          "DcpSaveShardedStrategy() / DcpLoadShardedStrategy() explicitly")
    _base.register_default_strategy(_base.StrategyAction.LOAD_SHARDED, BACKEND, VERSION, DcpLoadShardedStrategy())
    _base.register_default_strategy(_base.StrategyAction.SAVE_SHARDED, BACKEND, VERSION, DcpSaveShardedStrategy())

