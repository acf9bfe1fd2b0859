"""dcp inside torch.distributed.checkpoint (DCP), against DCP's own FileSystemWriter, on PyPI's torch 2.x.

    $(scripts/venv.sh)/bin/python bench/python/torch_dcp_bench.py [--gib 1] [--small 1000] [--json FILE]

Two states of DTensors on a CPU device mesh, 4 ranks (torch.multiprocessing, gloo):
  large: one float32 tensor of --gib GiB, Shard(0) over the ranks;
  small: --small tensors of 256 KiB (64 x 1024 float32), each Shard(0).
Phases: 4 ranks save, 4 ranks load the same layout, 2 ranks load it resharded
(Shard(0) over 2); each timed from right after a drop of the page cache, in its
ranks (bench_common.drop_caches_now says why there); --repeat N keeps the
fastest of N runs of each. Systems:
  raw          the disk's limit: each rank writes its bytes to one file + fsync, reads them back
  dcp          dcp.save / dcp.load (dcp's own Megatron-style API, the same slabs)
  dcp_storage  torch.distributed.checkpoint.save / load with dcp's StorageWriter /
               StorageReader and planners (dcp.integrations.torch), plan caching on (as fs_tN)
  fs_tN        torch.distributed.checkpoint.save / load with FileSystemWriter(thread_count=N)
               / FileSystemReader, plan caching on (an untimed save first fills the cache)
  null         DCP's own machinery alone: save / load with DCP's default planners (plan caching
               on) and a storage that moves no bytes (every item resolved, none written or
               read; loads are not checked): the time any DCP storage pays before its own
  bytecheckpoint  ByteCheckpoint's FSDP2 checkpointer (PyPI bytecheckpoint 0.0.2), the state as
               the parameters of a model; it needs torch <= 2.5, so it runs in its own venv:
               python -m venv V && V/bin/pip install torch==2.5.0 bytecheckpoint==0.0.2, then
               V/bin/python torch_dcp_bench.py --systems raw,bytecheckpoint
Every load is checked element by element; destinations exist (allocated, zeroed)
before the timed load, as a training job's do. Then the time async_save blocks the
caller (large state): DCP's async_save with FileSystemWriter and with dcp's
StorageWriter, and dcp's own save(..., async_sharded_save=True).

Times are the slowest rank's, between barriers. Needs root to drop the page cache.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "build", "python"))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from bench_common import drop_caches, drop_caches_now, end_rank, hold_free_pages, run_phase, values  # noqa: E402

ROWS_SMALL, COLS = 64, 1024
SAVE_WORLD = 4  # ranks of every save phase






def tensors(state):
    """(key, global rows) of every tensor."""
    if state["kind"] == "large":
        return [("big", state["rows"])]
    return [(f"t{i:05d}", ROWS_SMALL) for i in range(state["count"])]


def _dtensors(state, mesh, zero):
    from torch.distributed.tensor import DTensor, Shard
    world, rank = mesh.size(), mesh.get_local_rank()
    out = {}
    for key, rows in tensors(state):
        n = rows // world
        local = torch.zeros(n, COLS) if zero else values(key, n, COLS, rank * n)
        out["w." + key] = DTensor.from_local(local, mesh, [Shard(0)], run_check=False, shape=(rows, COLS),
                                             stride=(COLS, 1))
    return out


def _check(sd, state, world, rank):
    for key, rows in tensors(state):
        n = rows // world
        t = sd["w." + key]
        local = t.to_local() if hasattr(t, "to_local") else t
        if not torch.equal(local, values(key, n, COLS, rank * n)):
            return f"rank {rank}: {key} differs"
    return ""


# ------------------------------------------------------------------ systems

def _dcp_sd(state, world, rank, zero):
    import dcp
    sd = {}
    for key, rows in tensors(state):
        n = rows // world
        data = torch.zeros(n, COLS) if zero else values(key, n, COLS, rank * n)
        sd["w." + key] = dcp.ShardedTensor("w." + key, data, torch.float32, (n, COLS), (rows, COLS), (rank * n, 0))
    return sd


def _raw(phase, root, state, world, rank):
    """The disk's limit for the same bytes: each rank writes its slabs to one file and fsyncs
    (save), or reads its file back (load; 2 ranks: each reads two ranks' files)."""
    nbytes = sum(rows // 4 * COLS * 4 for _, rows in tensors(state))
    os.makedirs(root, exist_ok=True)
    if phase == "save":
        data = torch.cat([values(key, rows // world, COLS, rank * (rows // world)).reshape(-1)
                          for key, rows in tensors(state)]).numpy().tobytes()
        drop_caches_now(rank, dist.barrier)
        t0 = time.perf_counter()
        with open(os.path.join(root, f"rank{rank}"), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        dist.barrier()
        return time.perf_counter() - t0, ""
    files = range(rank * 4 // world, (rank + 1) * 4 // world)
    buf = bytearray(nbytes * len(files))  # the destination exists before the timed read, as a job's tensors do
    view = memoryview(buf)
    bad = ""
    drop_caches_now(rank, dist.barrier)
    t0 = time.perf_counter()
    for i, r in enumerate(files):
        with open(os.path.join(root, f"rank{r}"), "rb", buffering=0) as f:
            got = 0
            while got < nbytes:  # a read may return less than asked
                n = f.readinto(view[i * nbytes + got:(i + 1) * nbytes])
                if not n:
                    break
                got += n
        if got != nbytes and not bad:
            bad = f"rank {rank}: raw file {r} has {got} bytes, not {nbytes}"
    dist.barrier()
    return time.perf_counter() - t0, bad


class _Params(torch.nn.Module):
    """The state as a model's parameters (ByteCheckpoint saves models and optimizers)."""

    def __init__(self, state):
        super().__init__()
        self.ps = torch.nn.ParameterList([torch.nn.Parameter(torch.empty(rows, COLS, device="meta"))
                                          for _, rows in tensors(state)])


def _null_storage(state):
    """(writer, reader) of the `null` system: DCP's storage interface, no bytes moved. The reader's
    metadata is what FileSystemWriter's save of the state gives: each tensor in SAVE_WORLD chunks."""
    from torch.distributed.checkpoint import storage as st
    from torch.distributed.checkpoint.metadata import (ChunkStorageMetadata, Metadata, TensorProperties,
                                                       TensorStorageMetadata)
    from torch.futures import Future

    def done(value):
        future = Future()
        future.set_result(value)
        return future

    class Nothing:
        """What the writer and the reader do alike: nothing."""

        def reset(self, checkpoint_id=None):
            pass

        @classmethod
        def validate_checkpoint_id(cls, checkpoint_id):
            return True

        def prepare_local_plan(self, plan):
            return plan

        def prepare_global_plan(self, plans):
            return plans

    class Writer(Nothing, st.StorageWriter):
        def set_up_storage_writer(self, is_coordinator, *args, **kwargs):
            pass

        def write_data(self, plan, planner):
            for item in plan.items:
                planner.resolve_data(item)  # what every storage does for every item
            return done([st.WriteResult(index=i.index, size_in_bytes=0, storage_data=None) for i in plan.items])

        def finish(self, metadata, results):
            pass

    class Reader(Nothing, st.StorageReader):
        def read_metadata(self, *args, **kwargs):
            md = {}
            for key, rows in tensors(state):
                n = rows // SAVE_WORLD  # the save's chunks: Shard(0) over its ranks
                md["w." + key] = TensorStorageMetadata(
                    properties=TensorProperties(dtype=torch.float32), size=torch.Size([rows, COLS]),
                    chunks=[ChunkStorageMetadata(offsets=torch.Size([r * n, 0]), sizes=torch.Size([n, COLS]))
                            for r in range(SAVE_WORLD)])
            return Metadata(state_dict_metadata=md)

        def set_up_storage_reader(self, metadata, is_coordinator, *args, **kwargs):
            pass

        def read_data(self, plan, planner):
            for item in plan.items:  # what every storage does for every item, but the bytes
                planner.commit_tensor(item, planner.resolve_tensor(item))
            return done(None)

    return Writer(), Reader()


def _bytecheckpoint(phase, root, state, world, rank, mesh):
    """ByteCheckpoint's FSDP2 checkpointer on a model whose parameters are the state, Shard(0)."""
    import logging
    logging.disable(logging.INFO)  # it logs every phase of every rank
    import bytecheckpoint
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import fully_shard
    model = _Params(state)
    fully_shard(model, mesh=mesh)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for (key, rows), p in zip(tensors(state), model.ps):
            n = rows // world
            local = p.to_local()
            local.copy_(values(key, n, COLS, rank * n)) if phase == "save" else local.zero_()
    drop_caches_now(rank, dist.barrier)
    t0 = time.perf_counter()
    if phase == "save":
        bytecheckpoint.save(root, {"model": model}, framework="fsdp2")
    else:
        bytecheckpoint.load(root, {"model": model}, framework="fsdp2")
    dist.barrier()
    dt = time.perf_counter() - t0
    if phase == "save":
        return dt, ""
    return dt, _check({"w." + key: p for (key, _), p in zip(tensors(state), model.ps)}, state, world, rank)


def run_system(system, phase, root, state, world, rank, mesh):
    """(seconds, wrong-data message) of one phase on this rank."""
    if system == "raw":
        return _raw(phase, root, state, world, rank)
    if system == "bytecheckpoint":
        return _bytecheckpoint(phase, root, state, world, rank, mesh)
    import torch.distributed.checkpoint as dist_cp
    if system == "dcp":
        import dcp
        sd = _dcp_sd(state, world, rank, zero=(phase != "save"))
        drop_caches_now(rank, dist.barrier)
        t0 = time.perf_counter()
        if phase == "save":
            dcp.save(sd, root, step=1)
        else:
            dcp.load(sd, root, step=1)
        dist.barrier()
        dt = time.perf_counter() - t0
        return dt, "" if phase == "save" else _check({k: v.data for k, v in sd.items()}, state, world, rank)
    sd = _dtensors(state, mesh, zero=(phase != "save"))
    if system == "dcp_storage":
        from dcp.integrations.torch import LoadPlanner, SavePlanner, StorageReader, StorageWriter
        writer = lambda path=root: StorageWriter(path, step=1)  # noqa: E731
        reader, planner = StorageReader(root, step=1), LoadPlanner()
        save_planner = lambda: SavePlanner(enable_plan_caching=True)  # noqa: E731
    elif system == "null":
        from torch.distributed.checkpoint import DefaultSavePlanner
        null_writer, reader = _null_storage(state)
        writer = lambda path=root: null_writer  # noqa: E731
        planner = None
        save_planner = lambda: DefaultSavePlanner(enable_plan_caching=True)  # noqa: E731
    else:
        from torch.distributed.checkpoint import DefaultSavePlanner, FileSystemReader, FileSystemWriter
        threads = int(system[len("fs_t"):])
        writer = lambda path=root: FileSystemWriter(path, thread_count=threads)  # noqa: E731
        reader, planner = FileSystemReader(root), None
        save_planner = lambda: DefaultSavePlanner(enable_plan_caching=True)  # noqa: E731
    if phase == "save":
        warm = root + ".warm"  # fills DCP's plan cache (both storages); not timed
        dist_cp.save(sd, storage_writer=writer(warm), planner=save_planner())
        dist.barrier()
        if rank == 0:
            shutil.rmtree(warm, ignore_errors=True)
        planner_obj = save_planner()
        drop_caches_now(rank, dist.barrier)
        t0 = time.perf_counter()
        dist_cp.save(sd, storage_writer=writer(), planner=planner_obj)
        dist.barrier()
        return time.perf_counter() - t0, ""
    drop_caches_now(rank, dist.barrier)
    t0 = time.perf_counter()
    dist_cp.load(sd, storage_reader=reader, planner=planner)
    dist.barrier()
    return time.perf_counter() - t0, "" if system == "null" else _check(sd, state, world, rank)


def _worker(rank, world, init, system, phase, root, state, result):
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    from torch.distributed.device_mesh import init_device_mesh
    mesh = init_device_mesh("cpu", (world,))
    dt, bad = run_system(system, phase, root, state, world, rank, mesh)
    times = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(times, torch.tensor([dt], dtype=torch.float64))
    if rank == 0:
        with open(result, "w") as f:
            json.dump({"seconds": max(float(t.item()) for t in times)}, f)
    if bad:
        with open(result + f".bad{rank}", "w") as f:
            f.write(bad)
    end_rank()




# ------------------------------------------------------------------ async blocking time

def _async_worker(rank, world, init, system, root, state, result):
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    import torch.distributed.checkpoint as dist_cp
    from torch.distributed.device_mesh import init_device_mesh
    mesh = init_device_mesh("cpu", (world,))
    group = dist.new_group(backend="gloo")
    if system == "dcp":
        import dcp
        sd = _dcp_sd(state, world, rank, zero=False)
        drop_caches_now(rank, dist.barrier)
        t0 = time.perf_counter()
        handle = dcp.save(sd, root, step=1, async_sharded_save=True)
        blocked = time.perf_counter() - t0
        handle.wait()
    else:
        sd = _dtensors(state, mesh, zero=False)
        if system == "dcp_storage":
            from dcp.integrations.torch import SavePlanner, StorageWriter
            writer, planner = StorageWriter(root, step=1, group=group), SavePlanner()
        else:
            from torch.distributed.checkpoint import FileSystemWriter
            writer, planner = FileSystemWriter(root, thread_count=int(system[len("fs_t"):])), None
        drop_caches_now(rank, dist.barrier)
        t0 = time.perf_counter()
        future = dist_cp.async_save(sd, storage_writer=writer, planner=planner, process_group=group)
        blocked = time.perf_counter() - t0
        (future.upload_completion if hasattr(future, "upload_completion") else future).result()
    total = time.perf_counter() - t0
    out = [torch.zeros(2, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(out, torch.tensor([blocked, total], dtype=torch.float64))
    if rank == 0:
        with open(result, "w") as f:
            json.dump({"blocked_s": max(float(t[0]) for t in out), "total_s": max(float(t[1]) for t in out)}, f)
    end_rank()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="size of the large tensor")
    p.add_argument("--small", type=int, default=1000, help="number of 256 KiB tensors")
    p.add_argument("--root", default=None, help="scratch directory (removed at the end)")
    p.add_argument("--systems", default="raw,null,dcp,dcp_storage,fs_t1,fs_t2,fs_t4")
    p.add_argument("--repeat", type=int, default=1, help="runs per figure; the fastest is kept")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    with hold_free_pages() as held:
        print(f"torch_dcp_bench: {held}")
        run_all(a)


def run_all(a):
    scratch = a.root or tempfile.mkdtemp(prefix="dcp-torchbench-")
    os.makedirs(scratch, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dcp-torchbench-work-")
    rows = int(a.gib * (1 << 30) / (COLS * 4)) // 4 * 4
    states = {"large": {"kind": "large", "rows": rows}, "small": {"kind": "small", "count": a.small}}
    systems = a.systems.split(",")
    cold = drop_caches()
    results = {"cache_dropped": cold, "torch": torch.__version__, "figures": {}, "async": {}}
    print(f"torch_dcp_bench: torch {torch.__version__}; page cache {'dropped' if cold else 'NOT dropped (not root)'} "
          "right before every timed phase; seconds are the slowest rank's")
    for sname, state in states.items():
        gb = (rows * COLS * 4 if sname == "large" else a.small * ROWS_SMALL * COLS * 4) / 1e9
        for system in systems:
            root = os.path.join(scratch, f"{sname}-{system}")
            shutil.rmtree(root, ignore_errors=True)
            fig = {"gb": gb}
            for _ in range(max(1, a.repeat)):
                shutil.rmtree(root, ignore_errors=True)
                for phase, world in (("save", 4), ("load", 4), ("load_resharded", 2)):
                    t = run_phase(_worker, work, system, phase[:4], root, state, world)
                    fig[phase] = min(t, fig.get(phase, t))
            results["figures"][f"{sname}/{system}"] = fig
            shutil.rmtree(root, ignore_errors=True)
            print(f"  {sname:5s} {system:11s} " + "  ".join(  # null moves no bytes: no GB/s
                f"{k} {v:6.2f} s" + ("" if system == "null" else f" ({gb / v:5.2f} GB/s)")
                for k, v in fig.items() if k != "gb"), flush=True)
    if "raw" in systems:
        print("\nshare of the disk's limit (raw write+fsync / read of the same bytes, this run):")
        for sname in states:
            raw = results["figures"][f"{sname}/raw"]
            for system in systems:
                if system not in ("raw", "null"):
                    d = results["figures"][f"{sname}/{system}"]
                    print(f"  {sname:5s} {system:11s} " + "  ".join(f"{k} {raw[k] / d[k]:4.2f}" for k in
                                                                 ("save", "load", "load_resharded")))
    fs = [s for s in systems if s.startswith("fs_t")]
    if fs:
        print("\nspeed-up over DCP's FileSystemWriter at its best thread count per phase (its time / ours):")
        for sname in states:
            best = {k: min(results["figures"][f"{sname}/{s}"][k] for s in fs) for k in ("save", "load", "load_resharded")}
            results["figures"][f"{sname}/fs_best"] = best
            for mine in ("dcp", "dcp_storage"):
                d = results["figures"].get(f"{sname}/{mine}")
                if d:
                    print(f"  {sname:5s} {mine:11s} " + "  ".join(f"{k} {best[k] / d[k]:5.2f}x" for k in best))
    if fs and "null" in systems:
        print("\nDCP's own machinery (null: default planners, a storage that moves no bytes) against the goals "
              "(1.25x / 3x FileSystemWriter's best), and each storage's time above it:")
        for sname, goal in (("large", 1.25), ("small", 3.0)):
            best, null = results["figures"][f"{sname}/fs_best"], results["figures"][f"{sname}/null"]
            phases = ("save", "load", "load_resharded")
            print(f"  {sname:5s} null " + "  ".join(f"{k} {null[k]:5.2f} s" for k in phases) +
                  f";  {goal:g}x needs " + "  ".join(f"{k} <= {best[k] / goal:5.2f} s" for k in phases))
            for name, fig in (("dcp_storage", results["figures"].get(f"{sname}/dcp_storage")), ("fs_best", best)):
                if fig:
                    print(f"        above null: {name:11s} " +
                          "  ".join(f"{k} {fig[k] - null[k]:5.2f} s" for k in phases))
    print(f"\nasync save of the large state ({states['large']['rows'] * COLS * 4 / 1e9:.2f} GB), 4 ranks: "
          "time the caller is blocked, and until the checkpoint is durable")
    for system in [s for s in systems if s in ("dcp", "dcp_storage")] + fs[-1:]:
        root = os.path.join(scratch, f"async-{system}")
        init = tempfile.mktemp(dir=work, prefix="pg-")
        result = os.path.join(work, "async.json")
        mp.spawn(_async_worker, args=(4, init, system, root, states["large"], result), nprocs=4, join=True)
        with open(result) as f:
            r = json.load(f)
        results["async"][system] = r
        print(f"  {system:11s} blocked {r['blocked_s']:6.2f} s   done after {r['total_s']:6.2f} s", flush=True)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    if a.root is None:
        shutil.rmtree(scratch, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
