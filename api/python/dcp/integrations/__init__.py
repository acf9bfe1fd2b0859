"""dcp inside the engines users already run.

* :mod:`dcp.integrations.torch`: a ``torch.distributed.checkpoint`` storage
  (``StorageWriter`` / ``StorageReader``) and planners that never pickle.

Each submodule imports its engine; importing this package imports none.
"""
