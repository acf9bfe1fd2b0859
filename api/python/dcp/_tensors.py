"""Tensors in and out of the C++ core, without a copy and without linking torch.

A torch.Tensor (CPU or CUDA, any strides) or a NumPy array crosses as a
descriptor: (data pointer, dtype name, shape, strides in elements, device type,
device index, owner). The caller's object stays referenced by the state dict
for as long as the C++ call runs; `owner` keeps alive a copy made for the view
(a lazily conjugated torch view, a NumPy array of the other byte order), or is
None. torch is imported only if the caller uses it, so the package works with
NumPy alone, with Debian's torch 1.13 and with PyPI's 2.x.

The core copies CUDA memory on streams of its own: before a CUDA tensor
crosses, torch's current stream on its device is waited for, so that the
kernels that wrote it (or that still read a load's destination) are done.
"""

import sys

from . import _dcp
from .errors import InvalidArgumentError

_NUMPY_TO_DCP = {
    "bool": "bool", "uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "float16": "float16", "float32": "float32",
    "float64": "float64", "complex64": "complex64", "complex128": "complex128",
}
_DCP_TO_NUMPY = {v: k for k, v in _NUMPY_TO_DCP.items()}


def _torch():
    return sys.modules.get("torch")


def is_torch_tensor(x):
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def is_numpy_array(x):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def is_tensor(x):
    return is_torch_tensor(x) or is_numpy_array(x)


_TORCH_DTYPES = {}  # id(torch module) -> {torch dtype: dcp name}


def _torch_dtype_map():
    """{torch dtype: dcp name} of the imported torch (built once: it is on every tensor's path)."""
    torch = _torch()
    cached = _TORCH_DTYPES.get(id(torch))
    if cached is not None:
        return cached
    pairs = [("bool", "bool"), ("uint8", "uint8"), ("int8", "int8"), ("int16", "int16"), ("int32", "int32"),
             ("int64", "int64"), ("float16", "float16"), ("bfloat16", "bfloat16"), ("float32", "float32"),
             ("float64", "float64"), ("float8_e4m3fn", "float8_e4m3"), ("float8_e5m2", "float8_e5m2"),
             ("uint16", "uint16"), ("uint32", "uint32"), ("uint64", "uint64"), ("complex64", "complex64"),
             ("complex128", "complex128")]
    out = {}
    for t, d in pairs:
        if hasattr(torch, t):  # float8 from torch 2.1, uint16/32/64 from 2.3
            out[getattr(torch, t)] = d
    _TORCH_DTYPES[id(torch)] = out
    return out


def dtype_name(dtype):
    """dcp's name of a torch or NumPy dtype (or of a dcp name); ValueError if unsupported."""
    if isinstance(dtype, str):
        if dtype in _dcp.DTYPES:
            return dtype
        raise InvalidArgumentError(f"dtype {dtype!r} is not one of dcp's: {', '.join(_dcp.DTYPES)}")
    torch = _torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        name = _torch_dtype_map().get(dtype)
        if name is None:
            raise InvalidArgumentError(f"torch dtype {dtype} is not supported by dcp")
        return name
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            name = _NUMPY_TO_DCP.get(np.dtype(dtype).name)
        except TypeError:
            name = None
        if name is not None:
            return name
    raise InvalidArgumentError(f"dtype {dtype!r} is not supported by dcp")


def tensor_dtype(x):
    return dtype_name(x.dtype)


def shape_of(x):
    return tuple(int(s) for s in x.shape)


def descriptor(x, what, writable=False):
    """The C++ core's view of a tensor or array: (ptr, dtype, shape, strides, device, index, owner),
    owner: None, or a copy made for the view that the descriptor keeps alive. `what` names it in
    errors (anything str() turns into the name)."""
    if is_torch_tensor(x):
        if x.is_sparse:
            raise InvalidArgumentError(f"{what}: sparse tensors are not supported")
        dev = x.device
        kind = dev.type
        if kind != "cpu" and kind != "cuda":
            raise InvalidArgumentError(f"{what}: device {dev} is not supported (cpu or cuda)")
        strides = x.stride()  # a tuple of ints
        if any(s < 0 for s in strides):
            raise InvalidArgumentError(f"{what}: negative strides are not supported")
        name = _torch_dtype_map().get(x.dtype)
        if name is None:
            raise InvalidArgumentError(f"{what}: torch dtype {x.dtype} is not supported by dcp")
        owner = None
        if is_lazy_view(x):
            # A lazily conjugated or negated view (x.conj(), x.conj().imag): its memory holds the
            # values before the conjugation or negation. Saved, it is resolved into a copy that
            # the descriptor keeps alive; loaded into, it is refused (its memory is not its values).
            if writable:
                raise InvalidArgumentError(f"{what}: cannot load into a lazily conjugated or negated view "
                                           f"(is_conj() / is_neg()); load into a plain tensor and conjugate it")
            x = owner = x.resolve_conj().resolve_neg()
            strides = x.stride()
        if kind == "cuda":  # after the resolving copy, itself a kernel on torch's stream
            _wait_for_torch(torch_module=_torch(), device=dev)
        ptr = x.data_ptr() if x.numel() > 0 else 0
        return (ptr, name, tuple(x.shape), strides, kind, dev.index or 0, owner)
    if is_numpy_array(x):
        if writable and not x.flags.writeable:
            raise InvalidArgumentError(f"{what}: the NumPy array is read-only")
        name = tensor_dtype(x)
        owner = None
        if not x.dtype.isnative:
            # dcp stores little-endian values: an array of the other byte order is saved from a
            # native copy, and refused as a load's destination (its bytes would be misread).
            if writable:
                raise InvalidArgumentError(f"{what}: cannot load into a NumPy array of non-native byte order "
                                           f"({x.dtype.str}); load into a native one and convert it")
            x = owner = native_array(x)
        item = x.dtype.itemsize
        if any(s % item != 0 or s < 0 for s in x.strides):
            raise InvalidArgumentError(f"{what}: strides {x.strides} are not non-negative multiples of the element size")
        ptr = x.__array_interface__["data"][0] if x.size > 0 else 0
        return (ptr, name, shape_of(x), tuple(s // item for s in x.strides), "cpu", 0, owner)
    raise InvalidArgumentError(f"{what}: {type(x).__qualname__} is not a torch.Tensor or NumPy array")


def native_array(x):
    """`x` in the host's byte order (a copy if it is not)."""
    return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))


def _wait_for_torch(torch_module, device):
    """Waits for torch's current stream on `device` (cheap when it is idle)."""
    stream = torch_module.cuda.current_stream(device)
    if not stream.query():
        stream.synchronize()


def is_lazy_view(t):
    """True for a torch view whose conjugation or negation is lazy (torch >= 1.10)."""
    return (getattr(t, "is_conj", None) is not None and t.is_conj()) or \
        (getattr(t, "is_neg", None) is not None and t.is_neg())


def allocate(dtype, shape, like=None, device=None, numpy=False):
    """A zeroed tensor to load into: torch if torch is in use (on `device`) and not `numpy`, else NumPy."""
    torch = _torch()
    if torch is not None and not numpy and (like is None or is_torch_tensor(like)):
        tdtype = {v: k for k, v in _torch_dtype_map().items()}[dtype_name(dtype)]
        return torch.zeros(tuple(shape), dtype=tdtype, device=device if device is not None else "cpu")
    import numpy as np
    name = dtype_name(dtype)
    if name not in _DCP_TO_NUMPY:
        raise InvalidArgumentError(f"dtype {name} has no NumPy equivalent (import torch to load it)")
    return np.zeros(tuple(shape), dtype=_DCP_TO_NUMPY[name])


def from_bytes(dtype, shape, data, numpy=False):
    """A tensor (torch if in use and not `numpy`, else NumPy) holding a copy of row-major `data`."""
    out = allocate(dtype, shape, numpy=numpy)
    if is_torch_tensor(out):
        torch = _torch()
        if out.numel() > 0:
            out.view(-1).view(torch.uint8).copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return out
    import numpy as np
    return np.frombuffer(bytes(data), dtype=out.dtype).reshape(out.shape).copy()


def to_value(x):
    """A small tensor or array in the common state -> the core's TensorValue (a copy of its bytes)."""
    name = tensor_dtype(x)
    if is_torch_tensor(x):
        torch = _torch()
        if x.layout != torch.strided:
            raise InvalidArgumentError(f"{x.layout} tensors are not supported (only strided, dense ones)")
        t = x.detach().to("cpu")
        t = (t.resolve_conj().resolve_neg() if is_lazy_view(t) else t).contiguous()
        raw = t.view(-1).view(torch.uint8) if t.numel() > 0 else torch.empty(0, dtype=torch.uint8)
        return _dcp.TensorValue(name, list(shape_of(x)), raw.numpy().tobytes())
    import numpy as np
    return _dcp.TensorValue(name, list(shape_of(x)), np.ascontiguousarray(native_array(x)).tobytes())


def from_value(v, numpy=False):
    """The core's TensorValue -> a tensor (torch if in use and not `numpy`, else NumPy)."""
    return from_bytes(v.dtype, v.shape, v.data, numpy=numpy)
