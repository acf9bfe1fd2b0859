"""dcp.Store: the C++ Store (dcp/store.h) for Python.

    with dcp.Store.open("/ckpt/run1") as store:          # collective
        report = store.put(100, sharded_state_dict)      # collective
        loaded = store.get(100, request)                 # collective, fills `request` in place
        store.read(100, "decoder.weight", region, out)   # one process

State dicts are Megatron-style nested dicts (and lists) whose leaves are
:class:`dcp.ShardedTensor`, :class:`dcp.ShardedObject`,
:class:`dcp.ShardedTensorFactory` or plain values (the common state). Every
collective must be called by every rank of the group, in the same order; it
raises the same :mod:`dcp.errors` exception on every rank, and a failed put
commits nothing. The data path (encoding, I/O, the async put's background
write) runs with the GIL released.
"""

import dataclasses

from . import _dcp, comm as _comm
from . import _state


@dataclasses.dataclass
class SaveReport:
    """What this rank wrote (and referenced instead of rewriting) in a put."""

    chunks_written: int = 0
    objects_written: int = 0
    raw_bytes_written: int = 0
    stored_bytes_written: int = 0
    chunks_referenced: int = 0
    raw_bytes_referenced: int = 0
    base_records_unusable: int = 0


@dataclasses.dataclass
class LoadReport:
    """What this rank read, sent and received in a get."""

    chunks_read: int = 0
    bytes_read: int = 0
    chunks_sent: int = 0
    bytes_sent: int = 0
    chunks_received: int = 0
    bytes_received: int = 0


@dataclasses.dataclass
class GcReport:
    """What this rank's part of a garbage collection did."""

    generations_removed: int = 0
    records_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_pending: int = 0
    temporary_files_removed: int = 0


@dataclasses.dataclass
class LoadResult:
    """A get's outcome: the common state, this rank's report, strict-key findings."""

    common_state: dict
    report: LoadReport
    unexpected_keys: list
    missing_keys: list


def _save_options(overwrite=False, chunk_bytes=None, compression=None, incremental=None, encode_threads=None,
                  fully_parallel=None):
    o = {"overwrite": bool(overwrite)}
    for k, v in (("chunk_bytes", chunk_bytes), ("compression", compression), ("incremental", incremental),
                 ("encode_threads", encode_threads), ("fully_parallel", fully_parallel)):
        if v is not None:
            o[k] = v
    return o


def _load_options(strict=None, read_threads=None, max_inflight_bytes=None, read_once=None):
    from .mapping import StrictHandling
    o = {}
    if strict is not None:
        o["strict"] = StrictHandling(strict).code
    for k, v in (("read_threads", read_threads), ("max_inflight_bytes", max_inflight_bytes), ("read_once", read_once)):
        if v is not None:
            o[k] = v
    return o


def _checked_step(step, what="step"):
    """(step, None) for a step number (an int, or anything with __index__, in [0, 2**64)); else
    (0, the error, naming `what`). A collective call passes the error on as this rank's failure,
    with 0 in its place: every rank then fails (a put or get named by rank 0's step) instead of
    the others waiting."""
    import operator
    if isinstance(step, bool):  # an int to Python, but never meant as a step
        return 0, TypeError(f"{what} {step!r}: expected an int, not bool")
    try:
        n = operator.index(step)
    except TypeError:
        return 0, TypeError(f"{what} {step!r}: expected an int, not {type(step).__qualname__}")
    except Exception as e:  # noqa: BLE001 - a broken __index__ is this rank's failure too
        return 0, e
    if not 0 <= n < 1 << 64:
        return 0, ValueError(f"{what} {n} is outside [0, 2**64)")
    return n, None


def _step(step, what="step"):
    """_checked_step's step, or its error raised (the calls of one process alone)."""
    n, error = _checked_step(step, what)
    if error is not None:
        raise error
    return n


def _flag(value, what):
    """(bool(value), None), or (False, the error): bool() of an array raises, for one."""
    try:
        return bool(value), None
    except Exception as e:  # noqa: BLE001 - this rank's failure, passed on
        return False, TypeError(f"{what} {value!r}: {e}")


def _raise_or(error, convert):
    """convert(), unless `error` (raised)."""
    if error is not None:
        raise error
    return convert()


def _joined(error, call):
    """call(failure) for a collective call whose arguments were checked apart: `error` (this
    rank's, or None) is passed on as its failure, as _collective does."""
    return _collective(lambda: _raise_or(error, lambda: ()), 0, call)


def _collective(convert, fields, call):
    """call(*convert(), failure): a collective call of the core with the `fields` arguments
    `convert` makes from the caller's. If the conversion raises on this rank, the call is still
    made (with Nones and this rank's failure as (code, message)), so the other ranks do not wait
    for it: every rank then raises the same dcp error, here chained to the original exception."""
    from .errors import DcpError, status_of
    try:
        args, failure, error = convert(), None, None
    except Exception as e:  # noqa: BLE001 - every error is raised on every rank
        args, failure, error = (None,) * fields, status_of(e), e
    try:
        return call(*args, failure)
    except DcpError as agreed:
        if error is None:
            raise
        raise agreed from error


class Store:
    """A dcp store, open on every rank of a group (see the module docstring)."""

    def __init__(self, impl, group):
        self._impl = impl
        self._group = group

    @classmethod
    def open(cls, path, group=None, *, read_only=False, create_if_missing=True, lock_wait_ms=10000, repair=True):
        """Opens (creating if allowed) the store at `path`. Collective over `group` (see dcp.comm)."""
        py_comm, handle = _comm.resolve(group)
        impl = _dcp.Store.open(str(path), py_comm, handle, bool(create_if_missing), bool(read_only),
                               int(lock_wait_ms), bool(repair))
        return cls(impl, group)

    # -- lifetime
    def close(self):
        """Closes the store (waits for an async put in flight)."""
        if self._impl is not None:
            self._impl.close()
            self._impl = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    @property
    def _s(self):
        if self._impl is None:
            from .errors import FailedPreconditionError
            raise FailedPreconditionError("the store is closed")
        return self._impl

    @property
    def rank(self):
        return self._s.rank

    @property
    def size(self):
        return self._s.size

    @property
    def root(self):
        return self._s.root

    # -- writing
    def put(self, step, state_dict, **options):
        """Saves `state_dict` as `step` (collective). Options: overwrite, chunk_bytes, compression
        ('none' | 'lz4' | 'lz4_byte_planes'), incremental, encode_threads, fully_parallel."""
        s, (st, st_error) = self._s, _checked_step(step)
        return SaveReport(**_collective(
            lambda: _raise_or(st_error, lambda: (_state.for_save(state_dict), _save_options(**options))), 2,
            lambda tree, opts, failure: s.put(st, tree, opts, failure)))

    def put_async(self, step, state_dict, **options):
        """Starts saving `state_dict` as `step` in the background and returns once this rank's
        tensors are copied (collective); they may change right away. Collect with wait() or poll()."""
        s, (st, st_error) = self._s, _checked_step(step)
        _collective(lambda: _raise_or(st_error, lambda: (_state.for_save(state_dict), _save_options(**options))), 2,
                    lambda tree, opts, failure: s.put_async(st, tree, opts, failure))

    def wait(self):
        """Waits for the async put; its report, or its error (the same on every rank)."""
        return SaveReport(**self._s.wait())

    def poll(self):
        """None while the async put runs; then as wait()."""
        r = self._s.poll()
        return None if r is None else SaveReport(**r)

    def begin_step(self, step, **options):
        """Opens a streaming write of `step` (collective); then put_part(...), commit_step()."""
        s, (st, st_error) = self._s, _checked_step(step)
        _collective(lambda: (_raise_or(st_error, lambda: _save_options(**options)),), 1,
                    lambda opts, failure: s.begin_step(st, opts, failure))

    def put_part(self, state_dict):
        """Writes one part of the open step (collective)."""
        s = self._s
        return SaveReport(**_collective(lambda: (_state.for_save(state_dict),), 1, s.put_part))

    def commit_step(self):
        self._s.commit_step()

    def abort_step(self):
        self._s.abort_step()

    # -- reading
    def get(self, step, state_dict, **options):
        """Loads `step` into `state_dict` (collective): every ShardedTensor's data is filled in
        place (allocated if it has none), every ShardedObject's data replaced by the saved value.
        Options: strict (StrictHandling), read_threads, max_inflight_bytes, read_once."""
        s, (st, st_error) = self._s, _checked_step(step)
        # The options decide which collectives the get runs (strict modes, read_once), so a rank
        # whose request fails still passes them on: they are converted apart from the request.
        opts, opts_error = {}, None
        try:
            opts = _load_options(**options)
        except Exception as e:  # noqa: BLE001 - raised on every rank, through the call below
            opts_error = e

        def convert():
            for error in (st_error, opts_error):
                if error is not None:
                    raise error
            return _state.for_load(state_dict)  # (tree, finish)
        def call(tree, finish, failure):
            return s.get(st, tree, opts, failure), finish
        (common, report, unexpected, missing, objects), finish = _collective(convert, 2, call)
        finish(objects)
        return LoadResult(_state.from_value(common), LoadReport(**report), list(unexpected), list(missing))

    def read(self, step, key, region=None, out=None):
        """Reads `region` (a tuple of slices, or ((offsets), (shape))) of tensor `key` of `step` into
        `out` (allocated if None) on this process alone; returns it."""
        meta = self.metadata(step)
        t = next((t for t in meta["tensors"] if t["key"] == key), None)
        from .errors import NotFoundError
        if t is None:
            raise NotFoundError(f"tensor '{key}' is not in step {step}")
        origin, shape = _state.region_of(region, t["global_shape"])
        if out is None:
            from ._tensors import allocate
            out = allocate(t["dtype"], shape)
        from ._tensors import descriptor
        self._s.read(_step(step), key, list(origin), list(shape), descriptor(out, f"destination of '{key}'", True), {})
        return out

    def steps(self):
        return list(self._s.steps())

    def latest_step(self, *, collective=False):
        """The latest committed step, or None. With collective=True (a collective call): rank
        0's answer, or its error, on every rank, as the collective calls need it."""
        return self._s.agreed_latest_step() if collective else self._s.latest_step()

    def latest_step_at_open(self):
        """What latest_step(collective=True) returned when this store opened: rank 0's latest
        step, or its error, the same on every rank, with no collective of its own (it rode on
        the open's last round). Commits and deletions since do not change it."""
        return self._s.latest_step_at_open()

    def metadata(self, step):
        """What `step` holds: {'info': {...}, 'tensors': [...], 'objects': [...]}."""
        return self._s.metadata(_step(step))

    def load_plain(self, step, keys=()):
        """Whole tensors (allocated), objects and common state of `step`, on this process alone:
        (tensors by key, objects by unique key, common state)."""
        tensors, objects, common = self._s.load_plain(_step(step), list(keys), {})
        from ._tensors import from_bytes
        from .mapping import ShardedObject
        out_t = {k: from_bytes(dtype, shape, data) for k, dtype, shape, data in tensors}
        out_o = {}
        for key, gshape, goffset, data in objects:
            o = ShardedObject(key, _state.object_value(data), tuple(gshape), tuple(goffset))
            out_o[o.unique_key] = o
        return out_t, out_o, _state.from_value(common)

    # -- maintenance
    def remove_tensors(self, step, key_prefix, into_step=None, overwrite=False):
        """Removes the tensors whose key starts with `key_prefix` from `step` (collective)."""
        s, (st, st_error) = self._s, _checked_step(step)
        into, into_error = (None, None) if into_step is None else _checked_step(into_step, "into_step")
        replace, replace_error = _flag(overwrite, "overwrite")
        prefix_error = None
        if not isinstance(key_prefix, str):
            prefix_error = TypeError(f"key_prefix {key_prefix!r}: expected a str, not {type(key_prefix).__qualname__}")
        else:
            try:
                key_prefix.encode("utf-8")
            except UnicodeError as e:
                prefix_error = ValueError(f"key_prefix {key_prefix!r}: {e}")
        return list(_joined(st_error or into_error or replace_error or prefix_error,
                            lambda failure: s.remove_tensors(st, key_prefix if prefix_error is None else "", into,
                                                             replace, failure)))

    def delete_step(self, step):
        s, (st, st_error) = self._s, _checked_step(step)
        _joined(st_error, lambda failure: s.delete_step(st, failure))

    def apply_retention(self, keep_last=0, keep_every=0, keep_steps=()):
        s = self._s
        kept, kept_error = [], None
        try:
            kept = list(keep_steps)
        except Exception as e:  # noqa: BLE001 - this rank's failure, passed on
            kept_error = TypeError(f"keep_steps: {type(e).__name__}: {e}")
        checked = [_checked_step(keep_last, "keep_last"), _checked_step(keep_every, "keep_every")] + \
            [_checked_step(n, "kept step") for n in kept]
        error = next((e for _, e in checked if e is not None), kept_error)
        last, every, *keep = [n for n, _ in checked]
        return list(_joined(error, lambda failure: s.apply_retention(last, every, keep, failure)))

    def collect_garbage(self, compact_dead_fraction=0.5):
        s, fraction, error = self._s, 0.5, None
        try:
            fraction = float(compact_dead_fraction)
        except Exception as e:  # noqa: BLE001 - this rank's failure, passed on
            error = TypeError(f"compact_dead_fraction {compact_dead_fraction!r}: {e}")
        return GcReport(**_joined(error, lambda failure: s.collect_garbage(fraction, failure)))
