"""Ranks of test_convert_torch.py, spawned with torch.multiprocessing over gloo.

    torch_dcp_job.py save TORCH_DIR           4 ranks write a PyTorch distributed checkpoint, row-sharded
    torch_dcp_job.py load STORE TORCH_DIR     2 ranks load the dcp store (dcp.load) and the checkpoint
                                              dcp wrote back (torch's own loader), row-sharded, checking
                                              every element

torch 1.13: ShardedTensor with ChunkShardingSpec and torch.distributed._shard.checkpoint;
torch 2.x: DTensor Shard(0) and torch.distributed.checkpoint.
"""

import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

OLD = torch.__version__.startswith("1.")
if OLD:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "python"))
    import torch113_shim  # noqa: F401,E402

SHAPES = {"w.f32": ((12, 5), torch.float32), "w.bf16": ((8, 3), torch.bfloat16), "w.i64": ((4, 7), torch.int64)}


def full(key):
    shape, dtype = SHAPES[key]
    n = shape[0] * shape[1]
    return (torch.arange(n, dtype=torch.float64).reshape(shape) * 0.5 - 3).to(dtype)


def sharded(key, world, rank, zero=False):
    """This rank's view of `key`, row-sharded over `world` ranks, in the torch version's own type."""
    t = torch.zeros_like(full(key)) if zero else full(key)
    if OLD:
        from torch.distributed._shard import sharded_tensor
        from torch.distributed._shard.sharding_spec import ChunkShardingSpec
        spec = ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])
        st = sharded_tensor.empty(spec, *t.shape, dtype=t.dtype)
        shard = st.local_shards()[0]
        rows = shard.metadata.shard_sizes[0]
        first = shard.metadata.shard_offsets[0]
        shard.tensor.copy_(t[first:first + rows])
        return st
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    return distribute_tensor(t, init_device_mesh("cpu", (world,)), [Shard(0)])


def local(value):
    if OLD:
        shard = value.local_shards()[0]
        return shard.tensor, shard.metadata.shard_offsets[0]
    rows = value.to_local()
    return rows, dist.get_rank() * ((value.shape[0] + dist.get_world_size() - 1) // dist.get_world_size())


def save(rank, world, port, path):
    _init(rank, world, port)
    sd = {k: sharded(k, world, rank) for k in SHAPES}
    sd["extra"] = {"epoch": 3}
    if OLD:
        from torch.distributed._shard.checkpoint import FileSystemWriter, save_state_dict
        save_state_dict(sd, FileSystemWriter(path))
    else:
        import torch.distributed.checkpoint as dcpt
        dcpt.save(sd, storage_writer=dcpt.FileSystemWriter(path))
    _exit()


def load(rank, world, port, store, path):
    _init(rank, world, port)
    import dcp
    for key, (shape, dtype) in SHAPES.items():
        rows = shape[0] // world
        request = {"x": dcp.ShardedTensor(key, torch.zeros((rows, shape[1]), dtype=dtype), dtype, (rows, shape[1]),
                                          shape, (rank * rows, 0))}
        state = dcp.load(request, store)
        assert torch.equal(state["x"], full(key)[rank * rows:(rank + 1) * rows]), key
    sd = {k: sharded(k, world, rank, zero=True) for k in SHAPES}
    if OLD:
        from torch.distributed._shard.checkpoint import FileSystemReader, load_state_dict
        load_state_dict(sd, FileSystemReader(path))
    else:
        import torch.distributed.checkpoint as dcpt
        dcpt.load(sd, storage_reader=dcpt.FileSystemReader(path))
    for key in SHAPES:
        t, first = local(sd[key])
        assert torch.equal(t, full(key)[first:first + t.shape[0]]), key
    if rank == 0:
        print(f"torch dcp job ok: {world} ranks loaded the import and the export")
    _exit()


def _exit():
    """Every rank done, then out without torch's teardown: torch 2.11's gloo now and then aborts in it
    ("terminate called without an active exception", also in a save that never touches dcp)."""
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _init(rank, world, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    if sys.argv[1] == "save":
        mp.spawn(save, args=(4, _free_port(), sys.argv[2]), nprocs=4)
    else:
        mp.spawn(load, args=(2, _free_port(), sys.argv[2], sys.argv[3]), nprocs=2)
