"""Megatron-Core's dist_checkpointing vocabulary (mapping.py), over dcp.

The names and semantics are Megatron's (see shared/reference): a
:class:`ShardedTensor` is one rank's piece of a global tensor, placed by
``global_offset`` in a tensor of ``global_shape``, with ``replica_id`` (main
replica iff all zeros) and optional ``prepend_axis_num`` and
``flattened_range``; a :class:`ShardedObject` is a cell of a grid of opaque
objects (bytes, io.BytesIO or plain values in dcp: nothing is pickled); a
:class:`ShardedTensorFactory` saves one local tensor as several stored ones and
merges them back at load.
"""

import dataclasses
import enum
import math
from typing import Any, Callable, Optional, Tuple, Union

from . import _tensors
from .errors import InvalidArgumentError

ReplicaId = Union[int, Tuple[int, ...]]


def is_main_replica(replica_id):
    if isinstance(replica_id, int):
        return replica_id == 0
    return all(r == 0 for r in replica_id)


class StrictHandling(enum.Enum):
    """What a load does with keys it asks for that the checkpoint lacks (unexpected, per rank)
    and keys of the checkpoint no rank asks for (missing, the same on every rank)."""

    ASSUME_OK_UNEXPECTED = "assume_ok_unexpected"
    LOG_UNEXPECTED = "log_unexpected"
    LOG_ALL = "log_all"
    RAISE_UNEXPECTED = "raise_unexpected"
    RAISE_ALL = "raise_all"
    RETURN_UNEXPECTED = "return_unexpected"
    RETURN_ALL = "return_all"
    IGNORE_ALL = "ignore_all"

    @property
    def code(self):
        """The C++ core's StrictHandling value."""
        return list(StrictHandling).index(self)

    @staticmethod
    def requires_explicit_ckpt_mismatch_check(val):
        return val != StrictHandling.ASSUME_OK_UNEXPECTED

    @staticmethod
    def requires_global_app_metadata(val):
        return val in (StrictHandling.IGNORE_ALL, StrictHandling.RAISE_ALL, StrictHandling.RETURN_ALL,
                       StrictHandling.LOG_ALL)

    @staticmethod
    def requires_returning_mismatch_keys(val):
        return val in (StrictHandling.RETURN_UNEXPECTED, StrictHandling.RETURN_ALL)


def flat_bounds(key, fr):
    """(begin, end) of a flattened range given as a slice (step 1) or a (begin, end) pair."""
    if isinstance(fr, slice):
        if fr.step not in (None, 1):
            raise InvalidArgumentError(f"tensor '{key}': flattened_range {fr} must not have a step")
        return int(fr.start or 0), int(fr.stop)
    return int(fr[0]), int(fr[1])


def parse_strict_flag(strict):
    if isinstance(strict, StrictHandling):
        return strict
    if isinstance(strict, bool):
        return StrictHandling.RAISE_ALL if strict else StrictHandling.LOG_ALL
    return StrictHandling(strict)


@dataclasses.dataclass
class ShardedTensor:
    """One rank's piece of a global tensor (Megatron's ShardedTensor)."""

    key: str
    data: Any
    dtype: Any
    local_shape: Tuple[int, ...]
    global_shape: Tuple[int, ...]
    global_offset: Tuple[int, ...]
    axis_fragmentations: Optional[Tuple[int, ...]] = None
    replica_id: ReplicaId = 0
    prepend_axis_num: int = 0
    allow_shape_mismatch: bool = False
    flattened_range: Optional[slice] = None

    def __post_init__(self):
        self.local_shape = tuple(int(s) for s in self.local_shape)
        self.global_shape = tuple(int(s) for s in self.global_shape)
        self.global_offset = tuple(int(s) for s in self.global_offset)
        self.validate_metadata_integrity()

    def validate_metadata_integrity(self):
        """ValueError (dcp.InvalidArgumentError) naming the key if the data disagrees with the
        declaration or the geometry is inconsistent."""
        k = self.key
        if not isinstance(k, str) or not k:
            raise InvalidArgumentError(f"ShardedTensor key {k!r} must be a non-empty str")
        if len(self.global_shape) != len(self.global_offset):
            raise InvalidArgumentError(f"tensor '{k}': global shape {self.global_shape} and global offset "
                                       f"{self.global_offset} have different numbers of axes")
        if len(self.local_shape) + self.prepend_axis_num != len(self.global_shape):
            raise InvalidArgumentError(f"tensor '{k}': local shape {self.local_shape} with {self.prepend_axis_num} "
                                       f"prepended axes does not match global shape {self.global_shape}")
        if self.data is None:
            return
        if not _tensors.is_tensor(self.data):
            raise InvalidArgumentError(f"tensor '{k}': data is a {type(self.data).__qualname__}, not a torch.Tensor "
                                       "or NumPy array")
        if _tensors.tensor_dtype(self.data) != _tensors.dtype_name(self.dtype):
            raise InvalidArgumentError(f"tensor '{k}': data dtype {self.data.dtype} differs from the declared dtype "
                                       f"{self.dtype}")
        shape = _tensors.shape_of(self.data)
        if self.flattened_range is None:
            if shape != self.local_shape:
                raise InvalidArgumentError(f"tensor '{k}': data shape {shape} differs from the declared local shape "
                                           f"{self.local_shape}")
        else:
            begin, end = flat_bounds(k, self.flattened_range)
            if len(shape) != 1 or shape[0] != end - begin:
                raise InvalidArgumentError(f"tensor '{k}': flattened data of shape {shape} does not hold the "
                                           f"{end - begin} elements of flattened_range {self.flattened_range}")

    @property
    def is_main_replica(self):
        return is_main_replica(self.replica_id)

    @property
    def has_regular_grid(self):
        return self.axis_fragmentations is not None

    def global_slice(self):
        p = self.prepend_axis_num
        return tuple(self.global_offset[:p]) + tuple(
            slice(o, o + s) for o, s in zip(self.global_offset[p:], self.local_shape))

    def without_data(self):
        return dataclasses.replace(self, data=None)

    def init_data(self, device=None, init_fn=None):
        """Allocates `data` (zeros of the local shape, or of the flattened range) if it is None."""
        if self.data is not None:
            return
        if self.flattened_range is not None:
            begin, end = flat_bounds(self.key, self.flattened_range)
            shape = (end - begin,)
        else:
            shape = self.local_shape
        self.data = _tensors.allocate(self.dtype, shape, device=device)

    @classmethod
    def from_rank_offsets(cls, key, data, *rank_offsets, replica_id=0, prepend_axis_num=0, flattened_range=None,
                          **init_kwargs):
        """Megatron's from_rank_offsets: each (axis, axis_rank_offset, axis_fragmentations) splits
        global axis `axis` into equal pieces of the local extent, of which this shard is one."""
        if flattened_range is not None:
            raise InvalidArgumentError(f"tensor '{key}': use from_rank_offsets_flat for a flattened range")
        local, global_shape, global_offset, fragm = _geometry(key, _tensors.shape_of(data), *rank_offsets,
                                                              prepend_axis_num=prepend_axis_num)
        return cls(key, data, data.dtype, local, global_shape, global_offset, fragm, replica_id, prepend_axis_num,
                   flattened_range=None, **init_kwargs)

    @classmethod
    def from_rank_offsets_flat(cls, key, data, non_flat_local_shape, *args, flattened_range=None, **kwargs):
        """Megatron's from_rank_offsets_flat: `data` (1-D) holds elements `flattened_range` of the
        row-major flattening of a local tensor of `non_flat_local_shape`."""
        if flattened_range is None:
            raise InvalidArgumentError(f"tensor '{key}': flattened_range is required")
        start = flattened_range.start or 0
        if len(_tensors.shape_of(data)) != 1 or flattened_range.stop - start != _tensors.shape_of(data)[0]:
            raise InvalidArgumentError(f"tensor '{key}': flat data of shape {_tensors.shape_of(data)} does not hold "
                                       f"flattened_range {flattened_range}")
        if start < 0 or flattened_range.stop > math.prod(non_flat_local_shape):
            raise InvalidArgumentError(f"tensor '{key}': flattened_range {flattened_range} is outside a local "
                                       f"tensor of shape {tuple(non_flat_local_shape)}")

        base = _geometry(key, tuple(int(s) for s in non_flat_local_shape), *args,
                         prepend_axis_num=kwargs.get("prepend_axis_num", 0))
        extra = {k: v for k, v in kwargs.items() if k != "prepend_axis_num" and k != "replica_id"}
        return cls(key, data, data.dtype, base[0], base[1], base[2], base[3], kwargs.get("replica_id", 0),
                   kwargs.get("prepend_axis_num", 0), flattened_range=flattened_range, **extra)


def _geometry(key, local, *rank_offsets, prepend_axis_num=0):
    """(local_shape, global_shape, global_offset, axis_fragmentations) of from_rank_offsets."""
    global_offset = [0] * (prepend_axis_num + len(local))
    global_shape = [1] * prepend_axis_num + list(local)
    fragm = [1] * len(global_shape)
    seen = set()
    for t in rank_offsets:
        if len(t) != 3:
            raise InvalidArgumentError(f"tensor '{key}': rank offsets are (axis, axis_rank_offset, "
                                       f"axis_fragmentations), got {t!r}")
        axis, off, n = (int(x) for x in t)
        if axis < 0 or axis >= len(global_shape) or axis in seen:
            raise InvalidArgumentError(f"tensor '{key}': axis {axis} is out of range or given twice")
        if off < 0 or n < 1 or off >= n:
            raise InvalidArgumentError(f"tensor '{key}': invalid rank offset {off} of {n} fragments on axis {axis}")
        seen.add(axis)
        local_len = 1 if axis < prepend_axis_num else local[axis - prepend_axis_num]
        global_shape[axis] = n * local_len
        global_offset[axis] = off * local_len
        fragm[axis] = n
    return tuple(local), tuple(global_shape), tuple(global_offset), tuple(fragm)


@dataclasses.dataclass
class ShardedObject:
    """A cell of a grid of opaque objects (Megatron's ShardedObject). Not reshardable: a load
    asks for exactly a saved cell. `data` is bytes, an io.BytesIO or a plain value (nothing is
    pickled)."""

    key: str
    data: Any
    global_shape: Tuple[int, ...]
    global_offset: Tuple[int, ...]
    replica_id: ReplicaId = 0

    def __post_init__(self):
        self.global_shape = tuple(int(s) for s in self.global_shape)
        self.global_offset = tuple(int(s) for s in self.global_offset)
        if len(self.global_shape) != len(self.global_offset):
            raise InvalidArgumentError(f"object '{self.key}': global shape {self.global_shape} and offset "
                                       f"{self.global_offset} have different numbers of axes")

    @property
    def is_main_replica(self):
        return is_main_replica(self.replica_id)

    @property
    def unique_key(self):
        return (f"{self.key}/shard_{'.'.join(map(str, self.global_offset))}_"
                f"{'.'.join(map(str, self.global_shape))}")

    def without_data(self):
        return dataclasses.replace(self, data=None)

    @classmethod
    def empty_from_unique_key(cls, unique_key, replica_id=0):
        key, shard = unique_key.split("/")
        _, offset, shape = shard.split("_")
        return cls(key, None, tuple(int(x) for x in shape.split(".")), tuple(int(x) for x in offset.split(".")),
                   replica_id)


@dataclasses.dataclass
class ShardedTensorFactory:
    """One local tensor saved as several stored pieces (Megatron's ShardedTensorFactory):
    build_fn(key, data, replica_id, flattened_range) -> a sub state dict of ShardedTensors;
    merge_fn(loaded sub state dict) -> the local tensor."""

    key: str
    data: Any
    build_fn: Callable
    merge_fn: Callable
    replica_id: ReplicaId = 0
    flattened_range: Optional[slice] = None

    def build(self):
        return self.build_fn(self.key, self.data, self.replica_id, self.flattened_range)

    def without_data(self):
        raise NotImplementedError


@dataclasses.dataclass
class LocalNonpersistentObject:
    """A value that is not saved; at load it is put back in the result as it is."""

    obj: Any

    def unwrap(self):
        return self.obj
