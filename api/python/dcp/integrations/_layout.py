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
import warnings

from ..errors import DataLossError, DcpError, InternalError, NotFoundError
from ..mapping import ShardedObject

POINTER = "dcp.json"
STORE_DIR = "dcp_store"
DIRECTORY_KEY = "__dcp_step_directory__"


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


def referenced_steps(store):
    """The steps of `store` that a directory next to it (any name) points to. DataLossError if
    a pointer there is damaged (what it points to is unknown)."""
    store = os.path.normpath(os.path.abspath(store))
    parent = os.path.dirname(store)
    steps = set()
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return steps
    for entry in entries:
        if not entry.is_dir() or not has_pointer(entry.path):  # a link to a directory keeps its step too
            continue
        try:
            path, step = read_pointer(entry.path)
        except NotFoundError:
            continue  # removed meanwhile
        # A damaged pointer raises DataLossError: what it pointed to is unknown, so nothing may go.
        if os.path.normpath(path) == store:
            steps.add(step)
    return steps


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
    path = os.path.normpath(os.path.abspath(path))
    if os.path.dirname(path) != os.path.dirname(os.path.normpath(os.path.abspath(directory))):
        return []
    doomed, error = [], None
    if store.rank == 0:
        try:
            alive = referenced_steps(path)
            doomed = [s for s in store.steps()
                      if s != step and s not in alive and saved_through_directory(store, s)]
        except Exception as e:  # noqa: BLE001 - reported on every rank below
            doomed, error = [], f"{type(e).__name__}: {e}"
    message = json.dumps({"steps": doomed, "error": error}).encode()
    decided = json.loads((message if comm == "self" else comm.broadcast(0, message)).decode())
    deleted = []
    try:
        if decided["error"] is not None:
            raise InternalError(decided["error"])
        for s in decided["steps"]:
            store.delete_step(s)
            deleted.append(s)
        if deleted:
            store.collect_garbage()
    except DcpError as e:
        warnings.warn(f"dcp: step {step} of '{path}' is saved, but steps of removed step directories stay "
                      f"(deleted {deleted}): {e}", stacklevel=3)
    return deleted
