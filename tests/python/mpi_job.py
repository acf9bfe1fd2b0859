"""Run under mpirun: every rank saves its part of the GPT-like state through
mpi4py (dcp calls MPI from C++ through the communicator's handle), then loads
another layout on a sub-communicator and checks every element.
    mpirun -np 4 python3 mpi_job.py ROOT"""

import os
import sys

from mpi4py import MPI

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "dcp-demo"))
import gpt_state  # noqa: E402

import dcp  # noqa: E402


def main(root):
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    cfg = gpt_state.Config()
    sd = gpt_state.sharded_state_dict(cfg, 2, 2, rank)
    report = dcp.save(sd, root, step=1, group=comm)
    assert report.chunks_written > 0, report
    # Bad input on one rank: the same error everywhere, nothing committed.
    bad = gpt_state.sharded_state_dict(cfg, 2, 2, rank)
    if rank == 3:
        bad["model"]["final_layernorm"].global_offset = (1,)
    try:
        dcp.save(bad, root, step=2, group=comm)
        err = "no error"
    except dcp.InvalidArgumentError as e:
        err = str(e)
    errs = comm.allgather(err)
    assert len(set(errs)) == 1 and "decoder.final_layernorm.weight" in errs[0], errs
    # Two ranks load TP1 x PP2.
    sub = comm.Split(0 if rank < 2 else MPI.UNDEFINED, rank)
    if sub != MPI.COMM_NULL:
        req = gpt_state.sharded_state_dict(cfg, 1, 2, sub.Get_rank(), empty=True)
        del req["rng_state"]
        state = dcp.load(req, root, group=sub, strict=dcp.StrictHandling.LOG_ALL)
        msg = gpt_state.check(state, req, cfg, 1, 2, sub.Get_rank())
        assert msg == "" and state["iteration"] == 100, msg
        sub.Free()
    comm.Barrier()
    with dcp.Store.open(root, "self", read_only=True) as store:
        assert store.steps() == [1]
    if rank == 0:
        print(f"mpi job ok: {size} ranks saved, 2 loaded resharded")


if __name__ == "__main__":
    main(sys.argv[1])
