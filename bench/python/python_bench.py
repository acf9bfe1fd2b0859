"""dcp from Python against PyTorch's own checkpointing, same work, same run.

    /usr/bin/python3 bench/python/python_bench.py [--gib 1] [--small 1000] [--json FILE]

Two states, 4 ranks (torch.multiprocessing, gloo):
  large: one float32 tensor of --gib GiB, split in 4 row slabs;
  small: --small tensors of 256 KiB (64 x 1024 float32), each split in 4 row slabs.
Phases: 4 ranks save, 4 ranks load the same layout, 2 ranks load it resharded
(2 row slabs each); each timed from right after a drop of the page cache, in
its ranks (bench_common.drop_caches_now says why there). Systems:
  raw            the disk's limit for the same bytes and destinations: each rank
                 writes its slabs to one file (pwritev) and fsyncs; a load reads
                 the saved ranks' files straight into its slabs (preadv)
  dcp            dcp.save / dcp.load (the Megatron layer, torch.distributed gloo)
  dcp_mpi        the same over an mpi4py communicator, ranks under mpirun: the
                 C++ path's collectives (MPI from C++), so that the Python
                 binding's own cost shows apart from gloo's
  torch_sharded  Debian torch 1.13's sharded checkpoint
                 (torch.distributed._shard.checkpoint.save_state_dict /
                 load_state_dict, FileSystemWriter/Reader; ChunkShardingSpec)
  torch_save     torch.save / torch.load of each rank's own shards (+ fsync);
                 it cannot reshard, so it has no resharded figure
Every load is checked element by element. Load destinations (dcp's tensors,
the sharded checkpoint's ShardedTensors) are allocated and zeroed before the
timed load, as a training job's are; torch.load allocates by design. Then the GIL: a training-like loop of
small torch ops and Python work on rank 0, timed without and with a dcp
put_async of the large state running in the background.

Times are the slowest rank's, between barriers; before them, each phase's
ranks save and load a tiny state of their own with the same system (imports
and first runs of its code out of the timed region, as in the C++ path, whose
one process runs every phase). Every system's phases, and the C++ path, run
--repeat times (default 3): figures are medians, with each phase's fastest and
slowest run beside them (this machine's disk alone varies by up to 2x from one
run to the next). Ratios are printed against
torch_sharded (speed-up: its time / dcp's time) and as GB/s. Needs root to
drop the page cache (otherwise loads are from the cache; the output says so).
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "build", "python"))

import torch113_shim  # noqa: E402,F401  (before torch.distributed._shard)
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from bench_common import drop_caches, drop_caches_now, end_rank, hold_free_pages, run_phase, values  # noqa: E402

ROWS_SMALL, COLS = 64, 1024






def layout(state, world, rank):
    """(key, global rows, cols, first row, rows) of this rank's slabs."""
    out = []
    if state["kind"] == "large":
        rows, cols = state["rows"], COLS
        n = rows // world
        out.append(("big", rows, cols, rank * n, n))
    else:
        for i in range(state["count"]):
            n = ROWS_SMALL // world
            out.append((f"t{i:05d}", ROWS_SMALL, COLS, rank * n, n))
    return out


# ------------------------------------------------------------------ systems

_GROUP = None  # dcp's group: None (torch.distributed's default group) or, in an MPI job, COMM_WORLD

# Each system: build(slabs, fill) -> the state as the job holds it (outside
# the timed region: a job's model and optimizer hold it before the save);
# save(root, state); prepare(root, slabs) -> the load's destinations (a job's
# tensors exist before a load: allocated, touched); load(root, dest) -> the
# loaded tensors by slab key.

def dcp_build(slabs, fill):
    import dcp
    return {key: dcp.ShardedTensor("w." + key, fill(key, rows, cols, first, n), torch.float32, (n, cols),
                                   (rows, cols), (first, 0)) for key, rows, cols, first, n in slabs}


def dcp_save(root, sd):
    import dcp
    dcp.save(sd, root, step=1, group=_GROUP)


def dcp_prepare(root, slabs):
    import dcp
    return {key: dcp.ShardedTensor("w." + key, torch.zeros(n, cols), torch.float32, (n, cols), (rows, cols),
                                   (first, 0)) for key, rows, cols, first, n in slabs}


def dcp_load(root, req):
    import dcp
    dcp.load(req, root, step=1, group=_GROUP)
    return {k: t.data for k, t in req.items()}


def _spec(world):
    from torch.distributed._shard.sharding_spec import ChunkShardingSpec
    return ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])


def sharded_build(slabs, fill):
    from torch.distributed._shard import sharded_tensor
    world = dist.get_world_size()
    sd = {}
    for key, rows, cols, first, n in slabs:
        st = sharded_tensor.empty(_spec(world), rows, cols)
        st.local_shards()[0].tensor.copy_(fill(key, rows, cols, first, n))
        sd["w." + key] = st
    return sd


def sharded_save(root, sd):
    import torch.distributed._shard.checkpoint as sc
    sc.save_state_dict(sd, sc.FileSystemWriter(root))


def sharded_prepare(root, slabs):
    from torch.distributed._shard import sharded_tensor
    world = dist.get_world_size()
    sd = {"w." + key: sharded_tensor.zeros(_spec(world), rows, cols) for key, rows, cols, first, n in slabs}
    return sd


def sharded_load(root, sd):
    import torch.distributed._shard.checkpoint as sc
    sc.load_state_dict(sd, sc.FileSystemReader(root))
    return {k[2:]: st.local_shards()[0].tensor for k, st in sd.items()}


def plain_build(slabs, fill):
    return {key: fill(key, rows, cols, first, n) for key, rows, cols, first, n in slabs}


def plain_save(root, sd):
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"rank{dist.get_rank()}.pt")
    with open(path, "wb") as f:
        torch.save(sd, f)
        f.flush()
        os.fsync(f.fileno())


def plain_load(root, _):
    return torch.load(os.path.join(root, f"rank{dist.get_rank()}.pt"))  # allocates: that is how it loads


_RANK = None  # this process's rank, set by _phase: the raw system's file name
_IOV_MAX = os.sysconf("SC_IOV_MAX")


def _move_all(call, fd, views, offset):
    """os.pwritev / os.preadv (`call`) of `views` from file offset `offset`, IOV_MAX buffers a call,
    until every byte moved (a call may move fewer)."""
    views, i = [v for v in views if len(v)], 0
    while i < len(views):
        moved = call(fd, views[i:i + _IOV_MAX], offset)
        if moved <= 0:
            raise OSError(f"raw: {call.__name__} moved {moved} bytes at offset {offset}")
        offset += moved
        while i < len(views) and moved >= len(views[i]):
            moved -= len(views[i])
            i += 1
        if moved:
            views[i] = views[i][moved:]


def _bytes_of(t):
    return memoryview(t.numpy()).cast("B")


def raw_build(slabs, fill):
    return [fill(key, rows, cols, first, n) for key, rows, cols, first, n in slabs]


def raw_save(root, sd):
    os.makedirs(root, exist_ok=True)
    fd = os.open(os.path.join(root, f"rank{_RANK}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _move_all(os.pwritev, fd, [_bytes_of(t) for t in sd], 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def raw_prepare(root, slabs):
    return slabs, {key: torch.zeros(n, cols) for key, rows, cols, first, n in slabs}


def raw_load(root, dest):
    """Reads each saved rank's file that holds rows of this rank's slabs, in file order, straight
    into the slabs: file k of a save by w ranks holds, slab after slab, rows [k m, (k + 1) m) of
    every tensor (m = rows / w)."""
    slabs, out = dest
    saved = sum(1 for f in os.listdir(root) if f.startswith("rank"))  # the save's ranks
    for k in range(saved):
        pieces, offset = [], 0  # (file offset, destination bytes)
        for key, rows, cols, first, n in slabs:
            m = rows // saved
            lo, hi = max(first, k * m), min(first + n, (k + 1) * m)
            if lo < hi:
                pieces.append((offset + (lo - k * m) * cols * 4, _bytes_of(out[key][lo - first:hi - first])))
            offset += m * cols * 4
        if not pieces:
            continue
        fd = os.open(os.path.join(root, f"rank{k}"), os.O_RDONLY)
        try:
            start = 0
            for i in range(1, len(pieces) + 1):  # one preadv per run of adjacent pieces
                if i == len(pieces) or pieces[i][0] != pieces[i - 1][0] + len(pieces[i - 1][1]):
                    _move_all(os.preadv, fd, [v for _, v in pieces[start:i]], pieces[start][0])
                    start = i
        finally:
            os.close(fd)
    return out


# system -> (build, save, prepare, load)
SYSTEMS = {"raw": (raw_build, raw_save, raw_prepare, raw_load),
           "dcp": (dcp_build, dcp_save, dcp_prepare, dcp_load), "dcp_mpi": (dcp_build, dcp_save, dcp_prepare, dcp_load),
           "torch_sharded": (sharded_build, sharded_save, sharded_prepare, sharded_load),
           "torch_save": (plain_build, plain_save, lambda root, slabs: None, plain_load)}


# ------------------------------------------------------------------ phases

def _fill(key, rows, cols, first, n):
    return values(key, n, cols, first)


def _phase(rank, world, barrier, slowest, system, phase, root, state, result):
    """One phase on this rank: `barrier()` and `slowest(seconds)` (the largest over the ranks)
    are the job's own collectives."""
    global _RANK
    _RANK = rank
    build, save, prepare, load = SYSTEMS[system]
    # Before the timed region, the system saves and loads a tiny state of its
    # own: its modules are imported and its code paths run once, as in a job
    # that imported them at its start and as in the C++ path, whose process
    # runs every phase (its code stays mapped when the page cache is dropped;
    # a fresh process would read its libraries' pages from disk mid-phase).
    warm = f"{root}.warm{world}"
    if rank == 0:
        shutil.rmtree(warm, ignore_errors=True)  # a run that died left it
    barrier()
    tiny = layout({"kind": "small", "count": 2}, world, rank)
    save(warm, build(tiny, _fill))
    barrier()  # raw's save is not collective
    load(warm, prepare(warm, tiny))
    barrier()
    if rank == 0:
        shutil.rmtree(warm, ignore_errors=True)
    slabs = layout(state, world, rank)
    bad = ""
    # Each rank's time ends when its call returns (the slowest rank's is
    # reported), as the C++ path's TimedOverRanks.
    if phase == "save":
        sd = build(slabs, _fill)
        drop_caches_now(rank, barrier)
        t0 = time.perf_counter()
        save(root, sd)
        dt = time.perf_counter() - t0
        barrier()
    else:
        dest = prepare(root, slabs)
        drop_caches_now(rank, barrier)
        t0 = time.perf_counter()
        got = load(root, dest)
        dt = time.perf_counter() - t0
        barrier()
        for key, rows, cols, first, n in slabs:
            if not torch.equal(got[key], values(key, n, cols, first)):
                bad = f"rank {rank}: {key} differs"
                break
    seconds = slowest(dt)
    if rank == 0:
        with open(result, "w") as f:
            json.dump({"seconds": seconds}, f)
    if bad:
        with open(result + f".bad{rank}", "w") as f:
            f.write(bad)


def _worker(rank, world, init, system, phase, root, state, result):
    """A rank of a torch.distributed (gloo) job, spawned by run_phase."""
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.set_num_threads(1)

    def slowest(dt):
        times = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(times, torch.tensor([dt], dtype=torch.float64))
        return max(float(t.item()) for t in times)
    _phase(rank, world, dist.barrier, slowest, system, phase, root, state, result)
    end_rank()


def _mpi_worker(system, phase, root, state, result):
    """A rank of an MPI job (python_bench.py --mpi-phase ... under mpirun): dcp's Python path over
    mpi4py, whose collectives are the C++ path's (MPI, called from C++)."""
    from mpi4py import MPI
    global _GROUP
    comm = _GROUP = MPI.COMM_WORLD
    torch.set_num_threads(1)
    _phase(comm.rank, comm.size, comm.Barrier, lambda dt: comm.allreduce(dt, op=MPI.MAX), system, phase, root,
           state, result)


def run_mpi_phase(work, system, phase, root, state, world):
    """As run_phase, for `world` ranks under mpirun (_mpi_worker)."""
    result = os.path.join(work, "result.json")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(world), sys.executable,
                    os.path.abspath(__file__), "--mpi-phase", json.dumps([system, phase, root, state, result])],
                   check=True, env=env)
    bad = [f for f in os.listdir(work) if f.startswith("result.json.bad")]
    if bad:
        raise SystemExit(f"{system} {phase} over MPI: wrong data: {open(os.path.join(work, bad[0])).read()}")
    with open(result) as f:
        return json.load(f)["seconds"]


# ------------------------------------------------------------------ the GIL

def _training_loop(steps):
    """A function timing `steps` steps of a training loop's Python-heavy step (small torch ops
    and interpreter work, all under the GIL); returns seconds per step."""
    x = torch.randn(64, 64)

    def train_step():
        y = x
        for _ in range(20):
            y = torch.tanh(y @ x) * 0.5
        s = 0
        for i in range(2000):
            s += i * i
        return float(y.sum()) + s

    def loop():
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step()
        return (time.perf_counter() - t0) / steps

    return loop


def _gil_worker(rank, world, init, root, state, steps, result):
    import dcp
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    slabs = layout(state, world, rank)
    data = {key: _fill(key, rows, cols, first, n) for key, rows, cols, first, n in slabs}
    sd = {key: dcp.ShardedTensor("w." + key, data[key], torch.float32, (n, cols), (rows, cols), (first, 0))
          for key, rows, cols, first, n in slabs}
    loop = _training_loop(steps)

    barrier = dist.barrier if world > 1 else (lambda: None)
    # One process: the loop on one core, the put's encoding on the other.
    options = {} if world > 1 else {"encode_threads": 1}
    with dcp.Store.open(root, None if world > 1 else "self") as store:
        store.put(1, sd, **options)  # staging and files warm
        loop()
        barrier()
        quiet = loop()
        barrier()
        store.put_async(2, sd, incremental=False, **options)
        t0 = time.perf_counter()
        busy = loop()
        blocked_until_done = time.perf_counter() - t0
        report = store.wait()
        overlap_done = time.perf_counter() - t0
    barrier()
    if rank == 0:
        with open(result, "w") as f:
            json.dump({"step_quiet_s": quiet, "step_with_put_async_s": busy, "loop_s": blocked_until_done,
                       "put_async_total_s": overlap_done, "bytes": report.raw_bytes_written}, f)
    end_rank()


def _gil_control_worker(rank, world, init, root, state, steps, result):
    """The control: the same loop while the same put runs in *another* process
    (no GIL shared): what is left is contention for the cores, memory and disk."""
    import dcp
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    loop = _training_loop(steps)

    if rank == 0:
        loop()
        quiet = loop()
        dist.barrier()
        busy = loop()
        dist.barrier()
        with open(result, "w") as f:
            json.dump({"step_quiet_s": quiet, "step_with_put_elsewhere_s": busy}, f)
    else:
        slabs = layout(state, 1, 0)
        data = {key: _fill(key, rows, cols, first, n) for key, rows, cols, first, n in slabs}
        sd = {key: dcp.ShardedTensor("w." + key, data[key], torch.float32, (n, cols), (rows, cols), (first, 0))
              for key, rows, cols, first, n in slabs}
        with dcp.Store.open(root, "self") as store:
            store.put(1, sd, encode_threads=1)
            dist.barrier()
            store.put(2, sd, incremental=False, encode_threads=1)
            dist.barrier()
    end_rank()


def _medians(runs):
    """Per phase, the median seconds over `runs` (dicts phase -> seconds)."""
    import statistics
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def _spread(runs):
    """'  [save 0.30-0.41, ...]': each phase's fastest and slowest run, where there are several."""
    if len(runs) < 2:
        return ""
    return "  [" + ", ".join(f"{k} {min(r[k] for r in runs):.2f}-{max(r[k] for r in runs):.2f}" for k in runs[0]) + "]"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="size of the large tensor")
    p.add_argument("--small", type=int, default=1000, help="number of 256 KiB tensors")
    p.add_argument("--root", default=None, help="scratch directory (removed at the end)")
    p.add_argument("--systems", default="raw,dcp,dcp_mpi,torch_sharded,torch_save",
                   help="dcp_mpi: dcp's Python path over mpi4py under mpirun (left out without mpirun or mpi4py)")
    p.add_argument("--mpi-phase", default=None, help=argparse.SUPPRESS)  # a rank of run_mpi_phase
    p.add_argument("--gil-steps", type=int, default=60,
                   help="steps of the training loop in the GIL measurement (0: none)")
    p.add_argument("--repeat", type=int, default=3, choices=range(1, 100), metavar="N",
                   help="runs of every system's phases (and of the C++ path); figures are their medians")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.mpi_phase:
        _mpi_worker(*json.loads(a.mpi_phase))
        return
    with hold_free_pages() as held:
        print(f"python_bench: {held}")
        run_all(a)


def run_all(a):
    systems = a.systems.split(",")
    if "dcp_mpi" in systems and not (shutil.which("mpirun") and importlib.util.find_spec("mpi4py")):
        print("python_bench: dcp_mpi left out (needs mpirun and mpi4py)")
        systems.remove("dcp_mpi")
    scratch = a.root or tempfile.mkdtemp(prefix="dcp-pybench-")
    os.makedirs(scratch, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dcp-pybench-work-")
    rows = int(a.gib * (1 << 30) / (COLS * 4)) // 4 * 4
    states = {"large": {"kind": "large", "rows": rows}, "small": {"kind": "small", "count": a.small}}
    cold = drop_caches()
    results = {"cache_dropped": cold, "torch": torch.__version__, "repeat": a.repeat, "figures": {}, "runs": {}}
    print(f"python_bench: torch {torch.__version__}; page cache {'dropped' if cold else 'NOT dropped (not root)'} "
          "right before every timed phase; seconds are the slowest rank's")
    # The C++ API's path (bench/tensors_bench.cc under mpirun), each phase in
    # processes of its own, as the Python systems' phases are.
    cpp = os.path.join(HERE, "..", "..", "build", "bench", "tensors_bench")
    with_cpp = os.path.exists(cpp) and shutil.which("mpirun") and "dcp" in systems
    cpp_out = os.path.join(work, "cpp.json")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    def cpp_phase(system, phase, root, state, world):
        sname = state["kind"]
        subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(world), cpp, "--root",
                        os.path.join(scratch, "cpp"), "--gib", str(a.gib), "--small", str(a.small), "--phase",
                        "save" if phase == "save" else "load" if world == 4 else "load_resharded", "--state", sname,
                        "--json", cpp_out], check=True, env=env, stdout=subprocess.DEVNULL)
        with open(cpp_out) as f:
            return json.load(f)["seconds"]

    # Repeats outermost, every system (and the C++ path) once per repeat: the
    # disk's drift over the minutes of a run falls on every system alike.
    runs = {}
    for rep in range(a.repeat):
        for sname, state in states.items():
            for system in systems + (["dcp_cpp"] if with_cpp else []):
                phase = cpp_phase if system == "dcp_cpp" else \
                    (lambda *args: run_mpi_phase(work, *args)) if system == "dcp_mpi" else \
                    (lambda *args: run_phase(_worker, work, *args))
                root = os.path.join(scratch, f"{sname}-{system}")
                shutil.rmtree(root, ignore_errors=True)
                run = {"save": phase(system, "save", root, state, 4)}
                run["load"] = phase(system, "load", root, state, 4)
                if system != "torch_save":
                    run["load_resharded"] = phase(system, "load", root, state, 2)
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(os.path.join(scratch, "cpp"), ignore_errors=True)
                runs.setdefault((sname, system), []).append(run)
                print(f"  run {rep + 1}/{a.repeat} {sname:5s} {system:13s} " +
                      "  ".join(f"{k} {v:6.2f} s" for k, v in run.items()), flush=True)
    print(f"\nmedians of {a.repeat} runs [fastest-slowest]:")
    for (sname, system), rs in runs.items():
        gb = (rows * COLS * 4 if sname == "large" else a.small * ROWS_SMALL * COLS * 4) / 1e9
        fig = {"gb": gb, **_medians(rs)}
        results["figures"][f"{sname}/{system}"] = fig
        results["runs"][f"{sname}/{system}"] = rs
        label = "dcp C++" if system == "dcp_cpp" else system
        print(f"  {sname:5s} {label:13s} " + "  ".join(
            f"{k} {v:6.2f} s ({gb / v:5.2f} GB/s)" for k, v in fig.items() if k != "gb") + _spread(rs), flush=True)
    if "raw" in systems:
        print(f"\nshare of the disk's limit (raw's time / the system's, medians of {a.repeat}):")
        for sname in states:
            raw = results["figures"][f"{sname}/raw"]
            for system in systems + (["dcp_cpp"] if with_cpp else []):
                fig = results["figures"].get(f"{sname}/{system}")
                if system != "raw" and fig:
                    print(f"  {sname:5s} {system:13s} " + "  ".join(f"{k} {raw[k] / fig[k]:4.2f}" for k in fig
                                                              if k in raw and k != "gb"))
    if with_cpp:
        print(f"\ndcp's Python path / its C++ path (time, medians of {a.repeat}; 1.00 = as fast; the C++ path's "
              "collectives are MPI's):")
        for sname in states:
            cc = results["figures"].get(f"{sname}/dcp_cpp")
            for system, how in (("dcp", "torch.distributed (gloo)"), ("dcp_mpi", "mpi4py")):
                py_ = results["figures"].get(f"{sname}/{system}")
                if py_ and cc:
                    print(f"  {sname:5s} over {how:24s} " +
                          "  ".join(f"{k} {py_[k] / cc[k]:5.2f}" for k in ("save", "load", "load_resharded")))
    print(f"\nspeed-up of dcp over PyTorch (its time / dcp's time, medians of {a.repeat}):")
    for sname in states:
        d = results["figures"].get(f"{sname}/dcp")
        for peer in ("torch_sharded", "torch_save"):
            q = results["figures"].get(f"{sname}/{peer}")
            if d and q:
                line = "  ".join(f"{k} {q[k] / d[k]:5.2f}x" for k in ("save", "load", "load_resharded") if k in q)
                print(f"  {sname:5s} vs {peer:13s} {line}")
    raw, peer = (results["figures"].get(f"large/{s}") for s in ("raw", "torch_sharded"))
    if raw and peer:
        print("  the 1.25x goal on the large tensor needs " + "  ".join(
            f"{k} <= {peer[k] / 1.25:4.2f} s (raw {raw[k]:4.2f} s)" for k in ("save", "load", "load_resharded")))
    # The GIL: a training loop while a put_async writes the large state. One
    # process (loop and put on a core each: what the GIL costs), then 4 ranks
    # on this machine's 2 cores (the put's work competes for CPU as well).
    results["gil"] = {}
    for world in (1, 4) if a.gil_steps > 0 else ():  # --gil-steps 0: no GIL measurement
        root = os.path.join(scratch, f"gil{world}")
        init = tempfile.mktemp(dir=work, prefix="pg-")
        result = os.path.join(work, "gil.json")
        state = states["large"] if world == 4 else {"kind": "large", "rows": states["large"]["rows"] // 4}
        mp.spawn(_gil_worker, args=(world, init, root, state, a.gil_steps, result), nprocs=world, join=True)
        with open(result) as f:
            gil = json.load(f)
        results["gil"][f"{world}_ranks"] = gil
        slow = gil["step_with_put_async_s"] / gil["step_quiet_s"]
        print(f"\n{world} rank(s): training-loop step with a background put_async of {gil['bytes'] / 1e9:.2f} GB/rank "
              f"vs without: {slow:.3f}x ({gil['step_quiet_s'] * 1e3:.2f} ms -> {gil['step_with_put_async_s'] * 1e3:.2f} "
              f"ms; the put took {gil['put_async_total_s']:.2f} s)")
        shutil.rmtree(root, ignore_errors=True)
        if world == 1:
            init = tempfile.mktemp(dir=work, prefix="pg-")
            mp.spawn(_gil_control_worker, args=(2, init, root, state, a.gil_steps, result), nprocs=2, join=True)
            with open(result) as f:
                ctl = json.load(f)
            results["gil"]["control_put_in_another_process"] = ctl
            print(f"  control, the same put in another process (no shared GIL): "
                  f"{ctl['step_with_put_elsewhere_s'] / ctl['step_quiet_s']:.3f}x "
                  f"({ctl['step_quiet_s'] * 1e3:.2f} ms -> {ctl['step_with_put_elsewhere_s'] * 1e3:.2f} ms)")
            shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    if a.root is None:
        shutil.rmtree(scratch, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
