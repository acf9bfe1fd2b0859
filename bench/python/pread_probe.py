"""Reads the same files with and without `import torch` in the reading processes (a probe, not a benchmark).

    /usr/bin/python3 bench/python/pread_probe.py FILE [FILE ...] [--rounds 2]

One process per file reads it whole with os.preadv into one 8 MiB buffer,
all files at once (5 s after they start: imports done), page cache dropped
before each round (needs root); first
in processes that imported nothing else, then in processes that imported
torch first. Prints each process's wall and CPU seconds.

Why: in a profile of dcp's Python load of a 1 GiB tensor (4 ranks, page cache
dropped), the kernel's copy out of the page cache (`_copy_to_iter` under
RocksDB's `pread`) took 8x the CPU it took in dcp's C++ ranks doing the same
reads, and every Python checkpoint system of python_bench loads that tensor
about 2x slower than dcp's C++ path. On the 2-core VM of 2026-12-06, with 4
table files of 256 MiB: started unsynchronized, the plain processes read in
0.5-0.6 s with 0.05-0.18 s of CPU and the torch ones in 1.0-1.4 s with 0.4-0.7
s; started together (as now), both kinds took 1.1-1.9 s with 0.45-0.87 s of
CPU. So `import torch` alone is not it; concurrent cold reads are expensive
here, and why dcp's C++ ranks escape it is not understood yet.
"""

import argparse
import os
import subprocess
import sys
import time


def read_all(path, with_torch, start):
    if with_torch:
        import torch  # noqa: F401
    time.sleep(max(0.0, start - time.time()))  # every process reads at once, after its imports
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    fd = os.open(path, os.O_RDONLY)
    t, c, off = time.perf_counter(), time.process_time(), 0
    while True:
        n = os.preadv(fd, [view], off)
        if n <= 0:
            break
        off += n
    os.close(fd)
    print(f"  {'torch' if with_torch else 'plain'}: {off / 1e6:.0f} MB in {time.perf_counter() - t:.3f} s, "
          f"CPU {time.process_time() - c:.3f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # FILE plain|torch START
    a = p.parse_args()
    if a.child:
        read_all(a.child[0], a.child[1] == "torch", float(a.child[2]))
        return
    for _ in range(a.rounds):
        for mode in ("plain", "torch"):
            os.sync()
            try:
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
            except OSError:
                print("  (page cache not dropped: not root)")
            start = str(time.time() + 5.0)
            procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", f, mode, start])
                     for f in a.files]
            for proc in procs:
                proc.wait()


if __name__ == "__main__":
    main()
