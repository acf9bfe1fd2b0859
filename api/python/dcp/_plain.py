"""Plain Python values in dcp's value encoding (never pickle): the common state and ShardedObject
data of dcp's own API and the engines' non-tensor state.

dcp's values have no tuple; training state has them (optimizer ``betas``, RNG
states: ``random.getstate()``, ``np.random.get_state()``) and code that reads
it back may need them (``random.setstate``), so a tuple is stored as
``{"__dcp_tuple__": [...]}`` and comes back as a tuple.

An int outside dcp's 64-bit range (NumPy's PCG64 generator state holds
128-bit ones) is stored as ``{"__dcp_int__": "<decimal digits>"}`` and comes
back as the same int.

A NumPy scalar (``np.float64`` from ``np.mean``, ``np.int64``, ``np.bool_``)
is stored as ``{"__dcp_np_scalar__": <0-d array>}`` and comes back as the same
scalar type; a ``torch.dtype`` as ``{"__dcp_torch_dtype__": "bfloat16"}``, back
as that dtype (looked up among torch's dtypes, nothing else).

An ``io.BytesIO`` (torchtitan's ``TrainState`` keeps its loss history as
``torch.save`` bytes in one; DCP stores it as a BYTE_IO item) is stored as its
bytes, ``{"__dcp_bytes_io__": b"..."}``, and comes back as a new ``io.BytesIO``
at position 0. dcp never looks into those bytes: reading them (``torch.load``)
is the caller's choice, as it was when the caller wrote them.
"""

import io
import sys

from . import _tensors

TUPLE = "__dcp_tuple__"
BYTES_IO = "__dcp_bytes_io__"
BIG_INT = "__dcp_int__"
NP_SCALAR = "__dcp_np_scalar__"
TORCH_DTYPE = "__dcp_torch_dtype__"
_INT64 = range(-(1 << 63), 1 << 63)


def _numpy_scalar(x):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.generic)


def _torch_dtype(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.dtype)


def to_plain(x, name, hint="", lenient=False, path=()):
    """`x` for dcp's value encoding, tuples and the rest marked; TypeError naming `name` (and the
    place inside it) for what needs pickle. `lenient` (dcp's own common state and objects): a
    tuple subclass (torch.Size, a namedtuple) is a tuple, and what is not plain is left as it is
    for the core, which names it."""
    if type(x) is tuple or (lenient and isinstance(x, tuple)):  # noqa: E721 - subclasses are not plain
        return {TUPLE: [to_plain(v, name, hint, lenient, path + (i,)) for i, v in enumerate(x)]}
    if isinstance(x, list):
        return [to_plain(v, name, hint, lenient, path + (i,)) for i, v in enumerate(x)]
    if isinstance(x, dict):
        for reserved in _MARKED:
            if reserved in x:
                raise TypeError(f"'{_label(name, path)}': a dict key '{reserved}' is reserved by dcp")
        return {k: to_plain(v, name, hint, lenient, path + (k,)) for k, v in x.items()}
    if type(x) is io.BytesIO:  # noqa: E721 - a subclass may hold more than its bytes
        return {BYTES_IO: x.getvalue()}
    if isinstance(x, (str, bytes)) and _numpy_scalar(x):  # np.str_ / np.bytes_: a str / bytes, as before
        return str(x) if isinstance(x, str) else bytes(x)
    if _numpy_scalar(x):  # its dtype is checked where the 0-d array is encoded
        return {NP_SCALAR: sys.modules["numpy"].asarray(x)}
    if _torch_dtype(x):
        return {TORCH_DTYPE: str(x).split(".")[-1]}
    if type(x) is int and x not in _INT64:  # noqa: E721 - bool is an int too
        try:
            return {BIG_INT: str(x)}
        except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
            raise TypeError(f"'{_label(name, path)}' holds an int of more than {_max_digits()} digits, which dcp "
                            f"does not store") from None
    if lenient or x is None or type(x) in (bool, int, float, str, bytes) or _tensors.is_tensor(x):
        return x
    raise TypeError(f"'{_label(name, path)}' holds a {type(x).__module__}.{type(x).__qualname__}, which only "
                    f"pickle can store; "
                    f"dcp stores plain values (None, bool, int, float, str, bytes, io.BytesIO, tensors, NumPy "
                    f"arrays and scalars, torch dtypes, and lists, tuples and str-keyed dicts of them). "
                    f"{hint}".rstrip())


def _label(name, path):
    return ".".join(str(p) for p in (name,) + path) if name else ".".join(str(p) for p in path) or "<root>"


def _is_0d_array(v):
    np = sys.modules.get("numpy")
    return np is not None and type(v) is np.ndarray and v.ndim == 0


# What each marker holds; a marker dict with anything else is damaged (to_plain writes none).
_MARKED = {TUPLE: lambda v: type(v) is list, BYTES_IO: lambda v: type(v) is bytes,  # noqa: E721
           BIG_INT: lambda v: type(v) is str, NP_SCALAR: _is_0d_array,  # noqa: E721
           TORCH_DTYPE: lambda v: type(v) is str}  # noqa: E721


MARKERS = tuple(_MARKED)


def from_plain(x):
    """The inverse of to_plain; a malformed marker is DataLossError."""
    if isinstance(x, dict):
        marker = next((m for m in _MARKED if m in x), None)
        if marker is not None:
            if len(x) != 1 or not _MARKED[marker](x[marker]):
                raise _damaged(f"a stored '{marker}' value is malformed: a dict of keys {sorted(x)[:4]} holding "
                               f"a {type(x[marker]).__name__}")
            if marker == TUPLE:
                return tuple(from_plain(v) for v in x[TUPLE])
            if marker == BYTES_IO:
                return io.BytesIO(x[BYTES_IO])
            if marker == NP_SCALAR:
                return x[NP_SCALAR][()]
            if marker == TORCH_DTYPE:
                return _dtype_named(x[TORCH_DTYPE])
            return _big_int(x[BIG_INT])
        return {k: from_plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_plain(v) for v in x]
    return x


def _damaged(message):
    from .errors import DataLossError
    return DataLossError(message)


def _dtype_named(name):
    """torch's dtype `name` ("bfloat16"): an attribute of torch that is a dtype, nothing else."""
    import torch
    dtype = getattr(torch, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not isinstance(dtype, torch.dtype):
        raise _damaged(f"a stored torch dtype {name[:40]!r} is not one of this torch's dtypes")
    return dtype


def _max_digits():
    """Python's limit on the digits of an int converted from or to str (0: none; before 3.11: none)."""
    import sys
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0


def _big_int(digits):
    """The int of a stored BIG_INT: decimal digits with an optional sign, within Python's limit on
    int from str; anything else is a damaged value."""
    body = digits[1:] if digits[:1] == "-" else digits
    limit = _max_digits()
    if not body or (limit and len(body) > limit) or not body.isascii() or not body.isdigit():
        raise _damaged(f"a stored big int is not decimal digits: {digits[:40]!r}")
    return int(digits)
