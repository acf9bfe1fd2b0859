"""What the Python benchmarks share: dropping the page cache, the data, one timed phase."""

import contextlib
import json
import os
import signal
import sys
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


def end_rank():
    """Ends a spawned rank at once, its results written. No interpreter finalization (torch's gloo
    threads can still hold tensors then: see tests/python/test_integrations_torch.py), and no
    destroy_process_group either: under torch 2.5 (ByteCheckpoint's venv) one rank's destroy
    waited forever once the others had exited, and under Debian's torch 1.13 a rank aborted in
    it now and then ("terminate called without an active exception", python_bench 2026-12-07)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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


_REPORTING = "/sys/module/page_reporting/parameters/page_reporting_order"


@contextlib.contextmanager
def hold_free_pages():
    """For the run: the guest reports no free memory to the host (yields what it did, for the
    output). On a VM whose balloon reports free pages (virtio-balloon free page reporting, on
    our Firecracker VMs: /sys/module/page_reporting), memory the kernel freed more than about
    2 s earlier is handed back to the host, and every page the kernel then takes again (a cold
    read's page cache, a save's dirty pages) faults through the host, about 5 us per 4 KiB page,
    charged to the kernel's copy. Four `dd`s of 256 MiB each read in 0.52-0.60 s right after a
    drop of the page cache and in 0.98-1.45 s six seconds after it; dcp's 1 GiB load by 4 ranks
    took 0.6-1.9 s from one run to the next (2026-12-06). A page_reporting_order above the
    largest order reports nothing; the old value is put back at the end. A bare-metal machine
    has no such cost."""
    try:
        with open(_REPORTING) as f:
            old = f.read().strip()
        with open(_REPORTING, "w") as f:
            f.write("11\n")
    except OSError:
        yield "free page reporting not held (no knob, or not root)"
        return
    # A run stopped by SIGTERM (kill, timeout) puts the knob back too.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        yield f"free page reporting held for the run (page_reporting_order {old} -> 11)"
    finally:
        signal.signal(signal.SIGTERM, previous)
        with open(_REPORTING, "w") as f:
            f.write(old + "\n")


def drop_caches_now(rank, barrier):
    """Every rank calls it right before its timed region: rank 0 drops the page cache and every
    rank waits (`barrier()`, the job's own). Right before, and not before the phase's processes
    start: where free pages are reported to the host (hold_free_pages), dropping before the
    processes started charged the host's faults to every Python system, whose ranks import torch
    for seconds, and not to dcp's C++ path, started in 0.2 s: until 2026-12-06 the Python path's
    1 GiB load looked 2.2x slower than the C++ one."""
    barrier()
    if rank == 0:
        drop_caches()
    barrier()


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
