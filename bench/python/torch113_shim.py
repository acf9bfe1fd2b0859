"""Lets Debian's torch 1.13 import torch.distributed._shard (its sharded
checkpoint, the peer the benchmark measures) on Python 3.11: 3.11's dataclasses
refuse mutable class-level defaults that 1.13 declares (e.g. TensorProperties()),
so this turns such defaults into default factories. Import before any
torch.distributed._shard import. Changes no file of the system."""

import copy
import dataclasses

_original = dataclasses.dataclass


def _factory(value):
    return lambda: copy.deepcopy(value)


def _dataclass(cls=None, /, **kwargs):
    def wrap(c):
        for name in list(getattr(c, "__annotations__", {})):
            v = c.__dict__.get(name, dataclasses.MISSING)
            if isinstance(v, dataclasses.Field):
                if v.default is not dataclasses.MISSING and type(v.default).__hash__ is None:
                    v.default_factory, v.default = _factory(v.default), dataclasses.MISSING
            elif v is not dataclasses.MISSING and type(v).__hash__ is None:
                setattr(c, name, dataclasses.field(default_factory=_factory(v)))
        return _original(c, **kwargs)
    return wrap if cls is None else wrap(cls)


dataclasses.dataclass = _dataclass
