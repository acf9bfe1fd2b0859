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
    """Rows [first_row, first_row + rows) of tensor `key`, cheap to make and to check: per element,
    24 scrambled bits of its global index (and the key) as a float32 in [0, 1). Like trained weights,
    LZ4 cannot compress them (until 2026-12-06 this was row * cols + col + base, which LZ4 shrank
    5x, so dcp wrote a fifth of the bytes the other systems wrote). bench/tensors_bench.cc's Fill
    makes the same values."""
    base = sum(map(ord, key)) % 1000
    x = torch.arange(first_row * cols, (first_row + rows) * cols, dtype=torch.int64) + base * 1000003
    x = x * 2654435761  # below 2**63 for any index below 2**31
    x = x ^ (x >> 15)
    return (((x >> 8) % (1 << 24)).to(torch.float32) / (1 << 24)).reshape(rows, cols)


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
