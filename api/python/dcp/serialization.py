"""Megatron-Core's dist_checkpointing entry points (serialization.py), over a dcp store.

``checkpoint_dir`` is a dcp store; it holds many steps. ``step=None`` saves the
step after the latest one (0 for an empty store) and loads the latest one. The
distributed engine is ``group`` (see dcp.comm: torch.distributed's default
group under torchrun, an mpi4py communicator, or one process).

Differences from Megatron, on purpose: nothing is pickled (common state and
ShardedObject data are plain values or bytes; anything else is a TypeError
naming its path); validation of the global sharding runs on every rank and
every rank raises the same error; loads verify every byte.
"""

import logging

from . import _state, _tensors
from .errors import InvalidArgumentError
from .mapping import (LocalNonpersistentObject, ShardedObject, ShardedTensor, ShardedTensorFactory, StrictHandling,
                      parse_strict_flag)
from .store import Store

logger = logging.getLogger("dcp")


def _step_or_next(store, step):
    """`step`, or the one after the latest: rank 0's view when the store opened, the same on
    every rank (rank 0's error too, whatever this rank's `step`); ranks that then hold different
    steps fail in the put, by name."""
    latest = store.latest_step_at_open()
    if step is not None:
        return step
    return 0 if latest is None else latest + 1


def _step_or_latest(store, checkpoint_dir, step):
    """`step`, or the latest (rank 0's view at open, as in _step_or_next). A store without a step
    (as rank 0 sees it) fails on every rank, whatever its `step`: a rank that went on would wait
    in a get for the others."""
    latest = store.latest_step_at_open()
    if latest is None:
        from .errors import NotFoundError
        raise NotFoundError(f"store '{checkpoint_dir}' holds no committed step")
    return latest if step is None else step


def _latest(store, checkpoint_dir):
    """The latest step, read by this process alone (the load_* helpers)."""
    latest = store.latest_step()
    if latest is None:
        from .errors import NotFoundError
        raise NotFoundError(f"store '{checkpoint_dir}' holds no committed step")
    return latest


class AsyncSave:
    """The handle of save(..., async_sharded_save=True): wait() returns the SaveReport."""

    def __init__(self, store, step):
        self._store = store
        self.step = step

    def poll(self):
        return self._store.poll()

    def wait(self):
        try:
            return self._store.wait()
        finally:
            self._store.close()


def save(sharded_state_dict, checkpoint_dir, step=None, *, group=None, sharded_strategy=None, common_strategy=None,
         validate_access_integrity=True, async_sharded_save=False, content_metadata=None, **options):
    """Saves a Megatron sharded state dict as one step of the dcp store `checkpoint_dir`.

    Collective. Returns this rank's SaveReport, or an AsyncSave handle with
    async_sharded_save=True (the call returns once this rank's tensors are
    copied). Options as dcp.Store.put (overwrite, chunk_bytes, compression,
    incremental, fully_parallel, encode_threads). The strategy arguments exist
    for signature compatibility: dcp is the strategy; pass None.
    """
    if sharded_strategy is not None or common_strategy is not None:
        raise InvalidArgumentError("dcp.save takes no strategies (dcp is the storage); pass None")
    if not validate_access_integrity:
        logger.debug("validate_access_integrity=False: dcp validates the global sharding on every save anyway")
    # Nothing here may fail on one rank alone before the collective open (the
    # others would wait in it): a state dict that is not a dict fails in the put,
    # on every rank; the open creates the store's directories.
    if content_metadata is not None and isinstance(sharded_state_dict, dict):
        sharded_state_dict = {**sharded_state_dict, "content_metadata": content_metadata}
    store = Store.open(checkpoint_dir, group)
    try:
        step = _step_or_next(store, step)
        if async_sharded_save:
            store.put_async(step, sharded_state_dict, **options)
            handle, store = AsyncSave(store, step), None
            return handle
        return store.put(step, sharded_state_dict, **options)
    finally:
        if store is not None:
            store.close()


def _result(node, common):
    """The result of a load: the request's structure, ShardedTensors -> their (loaded) data,
    ShardedObjects -> their values, factories -> their merge, nonpersistent objects unwrapped;
    merged with the saved common state."""
    def walk(n):
        if isinstance(n, dict):
            return {k: walk(v) for k, v in n.items() if not _is_common(v)}
        if isinstance(n, list):
            return [walk(v) for v in n]
        if isinstance(n, (ShardedTensor, ShardedObject)):
            return n.data
        if isinstance(n, ShardedTensorFactory):
            return getattr(n, "loaded", n.data)
        if isinstance(n, LocalNonpersistentObject):
            return n.unwrap()
        return n
    out = walk(node)
    _merge(out, common)
    return out


def _is_common(v):
    if isinstance(v, (dict, list)):
        return False
    return not isinstance(v, (ShardedTensor, ShardedObject, ShardedTensorFactory, LocalNonpersistentObject))


def _merge(into, common):
    for k, v in common.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        elif k not in into:
            into[k] = v


def load(sharded_state_dict, checkpoint_dir, step=None, *, group=None, strict=StrictHandling.ASSUME_OK_UNEXPECTED,
         sharded_strategy=None, common_strategy=None, validate_access_integrity=True, **options):
    """Loads a step of `checkpoint_dir` into the layout `sharded_state_dict` describes.

    Collective. Returns the state dict with every ShardedTensor replaced by its
    loaded tensor (its `data`, filled in place, or allocated if it had none),
    every ShardedObject by its value, factories by their merge, merged with the
    saved common state — or (state_dict, missing_keys, unexpected_keys) in the
    RETURN_* strict modes, as Megatron does.
    """
    if sharded_strategy is not None or common_strategy is not None:
        raise InvalidArgumentError("dcp.load takes no strategies (dcp is the storage); pass None")
    strict = parse_strict_flag(strict)
    with Store.open(checkpoint_dir, group, read_only=True, create_if_missing=False) as store:
        step = _step_or_latest(store, checkpoint_dir, step)
        result = store.get(step, sharded_state_dict, strict=strict, **options)
    state = _result(sharded_state_dict, result.common_state)
    if StrictHandling.requires_returning_mismatch_keys(strict):
        return state, set(result.missing_keys), set(result.unexpected_keys)
    return state


def _open_local(checkpoint_dir):
    return Store.open(checkpoint_dir, "self", read_only=True, create_if_missing=False)


def load_common_state_dict(checkpoint_dir, step=None):
    """The common state of a step (this process alone; no tensor is read)."""
    with _open_local(checkpoint_dir) as store:
        step = _latest(store, checkpoint_dir) if step is None else step
        return store.get(step, {}).common_state


def _step_metadata(checkpoint_dir, step):
    """The metadata of `step` (None: the latest), read by this process alone, in one open."""
    with _open_local(checkpoint_dir) as store:
        return store.metadata(_latest(store, checkpoint_dir) if step is None else step)


def _tensors_of(meta):
    out = {}
    for t in meta["tensors"]:
        shape = tuple(t["global_shape"])
        out[t["key"]] = ShardedTensor(t["key"], None, _dtype_for_user(t["dtype"]), shape, shape, (0,) * len(shape),
                                      (1,) * len(shape))
    return out


def load_tensors_metadata(checkpoint_dir, step=None):
    """Every tensor of a step as a data-less ShardedTensor of the whole tensor, by key."""
    return _tensors_of(_step_metadata(checkpoint_dir, step))


def load_sharded_metadata(checkpoint_dir, step=None):
    """load_tensors_metadata plus every object cell (data-less ShardedObject), by unique key: both
    of the same step, read once (a save committing meanwhile cannot mix two steps)."""
    meta = _step_metadata(checkpoint_dir, step)
    out = _tensors_of(meta)
    for o in meta["objects"]:
        if o["key"] in _state.BOOKKEEPING_KEYS:
            continue
        obj = ShardedObject(o["key"], None, tuple(o["global_shape"]), tuple(o["global_offset"]))
        out[obj.unique_key] = obj
    return out


def load_plain_tensors(checkpoint_dir, step=None):
    """Every tensor of a step, whole, with the common state (this process alone)."""
    with _open_local(checkpoint_dir) as store:
        step = _latest(store, checkpoint_dir) if step is None else step
        tensors, objects, common = store.load_plain(step)
    out = dict(common)
    out.update(tensors)
    return out


def remove_sharded_tensors(checkpoint_dir, key_prefix, step=None, *, group=None, into_step=None, overwrite=False):
    """Removes the tensors whose key starts with `key_prefix` from a step (collective)."""
    with Store.open(checkpoint_dir, group, create_if_missing=False) as store:
        step = _step_or_latest(store, checkpoint_dir, step)
        return store.remove_tensors(step, key_prefix, into_step=into_step, overwrite=overwrite)


def _dtype_for_user(name):
    torch = _tensors._torch()
    if torch is not None:
        for t, n in _tensors._torch_dtype_map().items():
            if n == name:
                return t
    return name
