"""What the Python benchmarks share: dropping the page cache, the data, one timed phase."""

import json
import os
import tempfile

import torch
import torch.multiprocessing as mp


def drop_caches():
    """True if the page cache was dropped (needs root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def values(key, rows, cols, first_row):
    """Rows [first_row, first_row + rows) of tensor `key`: cheap, distinct per element."""
    base = (sum(map(ord, key)) % 1000) * 1.0
    r = torch.arange(first_row, first_row + rows, dtype=torch.float32).unsqueeze(1) * cols
    return r + torch.arange(cols, dtype=torch.float32) + base


def run_phase(worker, work, system, phase, root, state, world):
    """Spawns `world` ranks of `worker(rank, world, init, system, phase, root, state, result)`;
    the slowest rank's seconds (rank 0 writes them to `result`). Exits if a rank saw wrong data."""
    init = tempfile.mktemp(dir=work, prefix="pg-")
    result = os.path.join(work, "result.json")
    mp.spawn(worker, args=(world, init, system, phase, root, state, result), nprocs=world, join=True)
    bad = [open(os.path.join(work, f)).read() for f in os.listdir(work) if f.startswith("result.json.bad")]
    for f in os.listdir(work):
        if f.startswith("result.json.bad"):
            os.remove(os.path.join(work, f))
    if bad:
        raise SystemExit(f"{system} {phase}: wrong data: {bad[0]}")
    with open(result) as f:
        return json.load(f)["seconds"]
