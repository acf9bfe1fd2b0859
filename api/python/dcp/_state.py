"""Megatron-style sharded state dicts <-> the tagged trees the C++ core takes.

A sharded state dict is a nest of dicts and lists whose leaves are
ShardedTensor, ShardedObject, ShardedTensorFactory, LocalNonpersistentObject
or plain values (the common state). The core takes nested dicts with str keys
and tagged leaves (api/python/convert.h); lists become dicts keyed "0", "1",
..., and come back as lists.

ShardedObject data: bytes are stored as they are; an ``io.BytesIO`` (what
TransformerEngine's older ``get_extra_state`` returns) as its bytes behind a
magic prefix, loaded back as a new ``BytesIO`` at position 0; any other plain
value as dcp's common-state encoding behind another magic prefix (never
pickle), loaded back as the same value. Anything else raises TypeError naming
the path. Bytes that begin with either prefix are stored as an encoded value,
so they load back as the same bytes.

Common state and object values keep what dcp's values lack through _plain's
markers: tuples (``random.getstate()`` must come back as one), io.BytesIO,
NumPy scalars, torch dtypes and ints past 64 bits.
"""

import io

from . import _dcp, _plain, _tensors
from .errors import InvalidArgumentError, InvalidTypeError
from .mapping import (LocalNonpersistentObject, ShardedObject, ShardedTensor, ShardedTensorFactory, flat_bounds)

_SHARDED = (ShardedTensor, ShardedObject, ShardedTensorFactory, LocalNonpersistentObject)

_VALUE_MAGIC = b"DCPOBJV1\x00"
_BYTES_IO_MAGIC = b"DCPOBJB1\x00"


def _path_str(path):
    """A path in a state dict, for messages; dcp's own marker keys (see _plain) are not the user's."""
    path = [p for p in path if p not in _plain.MARKERS]
    return ".".join(str(p) for p in path) if path else "<root>"


# A NumPy array in the common state is {NDARRAY: <tensor>}, so that it loads back as a NumPy
# array (a bare small tensor loads as a torch.Tensor when torch is in use).
NDARRAY = "__dcp_ndarray__"
# Objects the engine integrations keep for themselves in a step (DCP's planner data; the step
# directory a step was saved through): not the state's keys. The core's strict key handling
# (engine/protocol/strict_keys.cc) knows them too.
TORCH_DCP_KEY = "__torch_dcp__"
STEP_DIRECTORY_KEY = "__dcp_step_directory__"
BOOKKEEPING_KEYS = (TORCH_DCP_KEY, STEP_DIRECTORY_KEY)
# Dict keys that mark values in the stored common state (a dict using one would load as another value).
_RESERVED = (NDARRAY,) + _plain.MARKERS


def _utf8(text, path, key=False):
    """InvalidArgumentError naming `path` if the str `text` (a dict key if `key`) is not valid UTF-8."""
    if text.isascii():  # the common case, on every key of a state dict
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        what = f"the key {text!r}" if key else "the str"
        raise InvalidArgumentError(f"common state '{_path_str(path)}': {what} is not valid UTF-8 ({e.reason} at "
                                   f"index {e.start}), which dcp cannot store") from None


def to_common(x, path):
    """A plain Python value for the core: tensors become TensorValue (a copy), NumPy arrays
    {NDARRAY: TensorValue}; the rest as is (the core raises TypeError for what it cannot store)."""
    if _tensors.is_tensor(x):
        try:
            value = _tensors.to_value(x)
        except InvalidArgumentError as e:
            raise type(e)(f"common state '{_path_str(path)}': {e}") from None
        return {NDARRAY: value} if _tensors.is_numpy_array(x) else value
    if isinstance(x, dict):
        if NDARRAY in x:
            raise InvalidTypeError(f"common state '{_path_str(path)}': the dict key '{NDARRAY}' is reserved by dcp")
        for k in x:
            if type(k) is str:  # noqa: E721 - the core names other keys itself
                _utf8(k, path, key=True)
        return {k: to_common(v, path + (k,)) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_common(v, path + (i,)) for i, v in enumerate(x)]
    if type(x) is str:  # noqa: E721
        _utf8(x, path)
    return x


def to_stored(x, path):
    """A plain Python value (common state, ShardedObject data) for the core: tuples, io.BytesIO,
    NumPy scalars, torch dtypes and ints past 64 bits marked (see _plain), then as to_common."""
    try:
        plain = _plain.to_plain(x, _path_str(path), lenient=True)
    except TypeError as e:
        raise InvalidTypeError(f"common state {e}") from None
    return to_common(plain, path)


def from_value(v):
    """The core's value -> Python: TensorValue -> tensor, {NDARRAY: ...} -> NumPy, marked values
    (tuples, ...) back to what they were."""
    return _plain.from_plain(_from_core(v))


def _from_core(v):
    if isinstance(v, _dcp.TensorValue):
        return _tensors.from_value(v)
    if isinstance(v, dict):
        if len(v) == 1 and NDARRAY in v and isinstance(v[NDARRAY], _dcp.TensorValue):
            return _tensors.from_value(v[NDARRAY], numpy=True)
        return {k: _from_core(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_core(x) for x in v]
    return v


def object_bytes(data, path):
    """A ShardedObject's data -> the bytes stored."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        head = bytes(data[: len(_VALUE_MAGIC)])
        if head != _VALUE_MAGIC and head != _BYTES_IO_MAGIC:
            return bytes(data)
        data = bytes(data)  # looks like a marked payload: stored as a value, so it loads back as these bytes
    elif type(data) is io.BytesIO:  # noqa: E721 - a subclass may hold more than its bytes
        return _BYTES_IO_MAGIC + data.getvalue()
    return _VALUE_MAGIC + _dcp.encode_value(to_stored(data, path), _path_str(path))


def object_value(raw):
    """Stored object bytes -> the value saved."""
    if raw[: len(_VALUE_MAGIC)] == _VALUE_MAGIC:
        return from_value(_dcp.decode_value(raw[len(_VALUE_MAGIC):]))
    if raw[: len(_BYTES_IO_MAGIC)] == _BYTES_IO_MAGIC:
        return io.BytesIO(raw[len(_BYTES_IO_MAGIC):])
    return raw


def _replica(r):
    if isinstance(r, int):
        return (r,)
    return tuple(int(x) for x in r)


class _TensorWhat:
    """A tensor leaf's name in error messages, made only when one is raised (every leaf of a
    state dict passes through here)."""
    __slots__ = ("key", "path")

    def __init__(self, key, path):
        self.key, self.path = key, path

    def __str__(self):
        return f"tensor '{self.key}' (entry '{_path_str(self.path)}')"


def tensor_leaf(t, path, load):
    desc = _tensors.descriptor(t.data, _TensorWhat(t.key, path), writable=load)
    return ("T", t.key, desc, _tensors.dtype_name(t.dtype), tuple(t.local_shape), tuple(t.global_shape),
            tuple(t.global_offset), int(t.prepend_axis_num), _replica(t.replica_id),
            None if t.flattened_range is None else flat_bounds(t.key, t.flattened_range),
            bool(t.allow_shape_mismatch))


class _Walk:
    """One conversion of a request; remembers where loaded objects go."""

    def __init__(self, load):
        self.load = load
        self.objects = {}   # path (tuple of str) -> (container, key) to put the loaded value
        self.factories = []  # (factory, built subtree) to merge after a load

    def tree(self, node, path):
        if type(node) is ShardedTensor:  # the most common leaf first
            return self._tensor(node, path)
        if isinstance(node, (list, tuple)) and not _has_sharded(node):
            return None if self.load else ("V", to_stored(node, path))  # a plain list: common state
        if isinstance(node, dict) or isinstance(node, list):
            if not node and path and isinstance(node, dict):  # an empty dict is a value (Megatron keeps it)
                return None if self.load else ("V", {})
            if not self.load and isinstance(node, dict):
                reserved = next((k for k in _RESERVED if k in node), None)
                if reserved is not None:
                    raise InvalidTypeError(f"state dict entry '{_path_str(path)}': the dict key '{reserved}' is "
                                           f"reserved by dcp")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            out = {}
            for k, v in items:
                if isinstance(node, dict) and not isinstance(k, str):
                    raise TypeError(f"state dict key {k!r} under '{_path_str(path)}' is not a str")
                if isinstance(node, dict):
                    _utf8(k, path, key=True)
                leaf = self.tree(v, path + (str(k),))
                if leaf is not None:
                    out[str(k)] = leaf
            return out
        if isinstance(node, ShardedTensor):
            return self._tensor(node, path)
        if isinstance(node, ShardedObject):
            if self.load:
                self.objects[tuple(path)] = node
                return ("O", node.key, b"", tuple(node.global_shape), tuple(node.global_offset),
                        _replica(node.replica_id))
            if not node.is_main_replica and node.data is None:
                return ("O", node.key, b"", tuple(node.global_shape), tuple(node.global_offset),
                        _replica(node.replica_id))
            return ("O", node.key, object_bytes(node.data, path), tuple(node.global_shape), tuple(node.global_offset),
                    _replica(node.replica_id))
        if isinstance(node, ShardedTensorFactory):
            built = node.build()
            if self.load:
                self.factories.append((node, built))
            return self.tree(built, path)
        if isinstance(node, LocalNonpersistentObject):
            return None
        if self.load:
            return None  # common values of a request are ignored (the saved ones come back)
        return ("V", to_stored(node, path))

    def _tensor(self, node, path):
        if node.data is None:
            if not self.load:
                raise InvalidArgumentError(f"tensor '{node.key}' (entry '{_path_str(path)}') has no data to save")
            node.init_data()
        return tensor_leaf(node, path, self.load)


def for_save(state_dict):
    """The core's tree of a state dict to save."""
    if not isinstance(state_dict, dict):
        raise TypeError("a sharded state dict must be a dict")
    return _Walk(load=False).tree(state_dict, ())


def for_load(state_dict):
    """(tree, finish) of a request; finish(objects by path) puts loaded objects in place and
    merges factories."""
    if not isinstance(state_dict, dict):
        raise TypeError("a sharded state dict must be a dict")
    walk = _Walk(load=True)
    tree = walk.tree(state_dict, ())

    def finish(objects):
        for path, raw in objects.items():
            obj = walk.objects.get(tuple(path))
            if obj is not None:
                obj.data = object_value(raw)
        for factory, built in walk.factories:
            factory.loaded = factory.merge_fn(_loaded(built))

    return tree, finish


def _has_sharded(node):
    if isinstance(node, _SHARDED):
        return True
    if isinstance(node, dict):
        return any(_has_sharded(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_has_sharded(v) for v in node)
    return False


def _loaded(node):
    """A built (factory) subtree after a load: ShardedTensors -> their data, objects -> their data."""
    if isinstance(node, dict):
        return {k: _loaded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_loaded(v) for v in node]
    if isinstance(node, (ShardedTensor, ShardedObject)):
        return node.data
    return node


def region_of(region, global_shape):
    """(origin, shape) of a region: None (the whole tensor), a tuple of slices/ints, or (origin, shape)."""
    g = [int(x) for x in global_shape]
    if region is None:
        return [0] * len(g), g
    if (isinstance(region, tuple) and len(region) == 2 and all(isinstance(r, (list, tuple)) for r in region)):
        return [int(x) for x in region[0]], [int(x) for x in region[1]]
    if not isinstance(region, tuple):
        region = (region,)
    origin, shape = [], []
    for axis, n in enumerate(g):
        r = region[axis] if axis < len(region) else slice(None)
        if isinstance(r, int):
            origin.append(r)
            shape.append(1)
            continue
        start, stop, step = r.indices(n)
        if step != 1:
            raise InvalidArgumentError("regions are contiguous: a slice step must be 1")
        origin.append(start)
        shape.append(max(0, stop - start))
    return origin, shape
