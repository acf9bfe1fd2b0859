"""dcp: a distributed checkpoint store for large-model training.

Two levels:

* Megatron-Core's ``dist_checkpointing`` names, so that a Megatron
  ``sharded_state_dict`` works as it is::

      import dcp
      sd = {"embedding": dcp.ShardedTensor.from_rank_offsets("emb.weight", w, (0, tp_rank, tp)),
            "iteration": 100}
      dcp.save(sd, "/ckpt/run1")              # collective (torchrun, mpirun, or one process)
      state = dcp.load(request, "/ckpt/run1")  # any other layout

* :class:`dcp.Store`, mirroring the C++ Store: steps, async puts, streaming
  parts, retention, garbage collection, reads of any region.

The data path runs in C++ with the GIL released; torch tensors (CPU or CUDA,
strided) and NumPy arrays cross without a copy. Nothing is ever pickled.
"""

from . import _dcp  # noqa: F401  (the extension: fails early if the build is missing)
from .errors import (AlreadyExistsError, DataLossError, DcpError, DcpIOError, FailedPreconditionError, InternalError,
                     InvalidArgumentError, InvalidTypeError, NotFoundError, UnimplementedError)
from .mapping import (LocalNonpersistentObject, ShardedObject, ShardedTensor, ShardedTensorFactory, StrictHandling,
                      is_main_replica)
from .serialization import (AsyncSave, load, load_common_state_dict, load_plain_tensors, load_sharded_metadata,
                            load_tensors_metadata, remove_sharded_tensors, save)
from .store import GcReport, LoadReport, LoadResult, SaveReport, Store



def export_safetensors(checkpoint_dir, step, path, keys="", max_shard_bytes=0):
    """Writes `step`'s tensors, consolidated, to the safetensors file `path`, or a sharded
    model with `max_shard_bytes` (dcp.inspect)."""
    from .inspect import export_safetensors as export
    return export(checkpoint_dir, step, path, keys, max_shard_bytes)


def import_safetensors(checkpoint_dir, source, step=None, **options):
    """Imports a safetensors model (a file or a sharded model's index.json) as one step
    (dcp.convert)."""
    from .convert import import_safetensors as imp
    return imp(checkpoint_dir, source, step, **options)


__all__ = [
    "AlreadyExistsError", "AsyncSave", "DataLossError", "DcpError", "DcpIOError", "FailedPreconditionError",
    "GcReport", "InternalError", "InvalidArgumentError", "InvalidTypeError", "LoadReport", "LoadResult",
    "LocalNonpersistentObject", "NotFoundError", "SaveReport", "ShardedObject", "ShardedTensor",
    "ShardedTensorFactory", "Store", "StrictHandling", "UnimplementedError", "export_safetensors",
    "import_safetensors", "is_main_replica", "load", "load_common_state_dict", "load_plain_tensors",
    "load_sharded_metadata", "load_tensors_metadata", "remove_sharded_tensors", "save",
]
