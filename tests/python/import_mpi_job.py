"""Run under mpirun: 4 ranks load an imported Hugging Face-style model at TP2 x PP2
through mpi4py, and check every element against what the import rules make of it.
    mpirun -np 4 python3 import_mpi_job.py ROOT"""

import os
import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_model  # noqa: E402

import dcp  # noqa: E402


def main(root):
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    full = hf_model.megatron_tensors()
    request = {}
    for name, g, offset, local, replica in hf_model.tp_pp_slices(2, 2, rank):
        data = np.zeros(local, dtype=full[name].dtype)
        request[name] = dcp.ShardedTensor(name, data, full[name].dtype, local, g, offset, replica_id=replica)
    state = dcp.load(request, root, group=comm, strict=dcp.StrictHandling.ASSUME_OK_UNEXPECTED)
    bad = []
    for name, g, offset, local, replica in hf_model.tp_pp_slices(2, 2, rank):
        want = full[name][tuple(slice(o, o + n) for o, n in zip(offset, local))]
        if not np.array_equal(state[name], want):
            bad.append(name)
    bad = comm.allgather(bad)
    assert not any(bad), bad
    if rank == 0:
        print(f"import mpi job ok: {comm.Get_size()} ranks loaded TP2xPP2, {len(full)} tensors checked")


if __name__ == "__main__":
    main(sys.argv[1])
