"""Step directories: an engine that writes each checkpoint into its own directory
(Megatron-LM's ``<save>/iter_0000100``, torchtitan's ``<folder>/step-100``)
over one dcp store next to them (``<save>/dcp_store``), so that a chunk that did
not change since the previous checkpoint is referenced, not rewritten.

A step directory holds ``dcp.json``, the pointer: ``{"store": <the store's path
relative to the directory>, "step": <int>}``, written (temporary file, fsync,
rename) after the step committed. Whatever else the engine keeps there is its
own.

A step saved through a step directory holds the object ``DIRECTORY_KEY``
(``{"directory": <its name>}``). Removing the directory releases the step: the
next save through a step directory deletes every such step that no directory
next to the store points to any more (:func:`release_removed`). Steps saved into
the store otherwise never go that way.
"""

import json
import os
import re
import stat
import warnings

from .. import _state
from ..errors import DataLossError, DcpError, InternalError, NotFoundError
from ..mapping import ShardedObject

POINTER = "dcp.json"
STORE_DIR = "dcp_store"
DIRECTORY_KEY = _state.STEP_DIRECTORY_KEY


def location(directory, pattern, store=None, step=None):
    """(store path, step or None, True if `directory` is a step directory) for a save into
    `directory`: a directory whose name matches `pattern` (its group 1 the step) shares the
    store next to it; another gets its own store inside it. `store` / `step` override."""
    directory = os.path.abspath(os.fspath(directory))
    m = re.fullmatch(pattern, os.path.basename(directory))
    if store is None:
        store = os.path.join(os.path.dirname(directory) if m else directory, STORE_DIR)
    if step is None and m:
        step = int(m.group(1))
    return os.path.abspath(os.fspath(store)), step, m is not None


def has_pointer(directory):
    return os.path.isfile(os.path.join(os.fspath(directory), POINTER))


def read_pointer(directory):
    """(store path, step) that a step directory points to. NotFoundError if it has no pointer,
    DataLossError (naming the file) if the pointer is not what dcp writes."""
    path = os.path.join(os.fspath(directory), POINTER)
    try:
        with open(path, "rb") as f:
            p = json.loads(f.read().decode())
        if not isinstance(p, dict) or not isinstance(p.get("store"), str) or type(p.get("step")) is not int \
                or p["step"] < 0:
            raise ValueError(f"it holds {p!r}")
    except FileNotFoundError:
        raise NotFoundError(f"'{directory}' was not written by dcp: it has no {POINTER}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataLossError(f"'{path}' is damaged ({e}): it must be "
                            '{"store": <path>, "step": <int>}') from None
    return os.path.normpath(os.path.join(os.fspath(directory), p["store"])), p["step"]


def _write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_pointer(directory, store, step, also=()):
    """Points `directory` (created if missing) at `step` of `store`: dcp.json, and the same
    bytes under each name in `also` (markers other tools look for). The directory is synced."""
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    data = json.dumps({"store": os.path.relpath(store, directory), "step": int(step)}).encode()
    for name in (POINTER,) + tuple(also):
        _write_atomic(os.path.join(directory, name), data)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def next_to_store(store, directory):
    """Whether `directory` sits next to `store` (its steps are watched: see release_removed)."""
    return _same(os.path.dirname(os.path.abspath(store)), os.path.dirname(os.path.abspath(directory)))


def referenced_steps(store, exclude=None):
    """The steps of `store` that a directory next to it (any name; `exclude` not counted) points
    to. Only a directory or a pointer that is not there is passed over: a damaged pointer
    (DataLossError) or any other error reading one (a permission, a stale NFS handle) raises,
    so that nothing is deleted on a guess."""
    store = os.path.realpath(store)
    steps = set()
    try:
        entries = list(os.scandir(os.path.dirname(store)))
    except FileNotFoundError:
        return steps
    for entry in entries:
        if exclude is not None and _same(entry.path, exclude):
            continue
        try:
            if not stat.S_ISDIR(os.stat(entry.path).st_mode):  # a link to a directory keeps its step too
                continue
            path, step = read_pointer(entry.path)
        except (FileNotFoundError, NotFoundError):
            continue  # not a step directory, or removed meanwhile
        if os.path.realpath(path) == store:
            steps.add(step)
    return steps


def _rank0_decides(store, comm, decide):
    """Rank 0's decide() (a JSON value) on every rank: (value, None), or (None, its error's text)."""
    value, error = None, None
    if store.rank == 0:
        try:
            value = decide()
        except Exception as e:  # noqa: BLE001 - reported on every rank
            value, error = None, f"{type(e).__name__}: {e}"
    message = json.dumps({"value": value, "error": error}).encode()
    decided = json.loads((message if comm == "self" else comm.broadcast(0, message)).decode())
    return decided["value"], decided["error"]


def replaces_released(store, comm, path, step, directory):
    """Before a save of `step` through `directory` (collective): whether `step` is committed,
    was saved through a step directory, and no directory but `directory` points to it -- its
    directory was removed (a rollback: torchtitan resumes from an earlier step and saves the
    later ones again), or this save rewrites it. Then the save replaces it (overwrite)."""
    if not next_to_store(path, directory):
        return False

    def decide():
        return step in store.steps() and saved_through_directory(store, step) and \
            step not in referenced_steps(path, exclude=directory)
    value, _ = _rank0_decides(store, comm, decide)
    return bool(value)  # undecided: not replaced (the save then names the step that exists)


def directory_object(directory):
    """The object a step saved through `directory` holds (rank 0 saves it)."""
    return ShardedObject(DIRECTORY_KEY, {"directory": os.path.basename(os.path.abspath(directory))}, (1,), (0,))


def saved_through_directory(store, step):
    return any(o["key"] == DIRECTORY_KEY for o in store.metadata(step)["objects"])


def release_removed(store, comm, path, step, directory):
    """After `step` of the store at `path` was saved through `directory` (collective: `comm` is
    the store's communicator, "self" for one process): deletes the steps saved through a step
    directory that no directory next to the store points to any more, reclaims their space and
    returns them. Only for the store next to `directory` (an explicit store elsewhere is not
    watched). Rank 0 decides; what keeps it from deciding, or fails a deletion, is a warning on
    every rank: the save itself committed."""
    if not next_to_store(path, directory):
        return []

    def decide():
        alive = referenced_steps(path)
        return [s for s in store.steps() if s != step and s not in alive and saved_through_directory(store, s)]
    doomed, error = _rank0_decides(store, comm, decide)
    deleted = []
    try:
        if error is not None:
            raise InternalError(error)
        for s in doomed:
            store.delete_step(s)
            deleted.append(s)
        if deleted:
            store.collect_garbage()
    except DcpError as e:
        warnings.warn(f"dcp: step {step} of '{path}' is saved, but steps of removed step directories stay "
                      f"(deleted {deleted}): {e}", stacklevel=3)
    return deleted
