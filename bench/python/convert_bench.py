"""A Megatron torch_dist checkpoint into dcp (python3 -m dcp.convert from-torch-dist) against
PyTorch's own load of the same checkpoint, same run, page cache dropped before each.

    build/venv-torch2/bin/python bench/python/convert_bench.py [--gib 1] [--root DIR] [--json FILE]

The checkpoint: --gib GiB of float32 values in 16 MiB tensors plus a few ShardedObjects and a
common.pt, written the way megatron-core 0.16.1's torch_dist strategy writes it (PyTorch's
distributed checkpoint files, objects as BYTE_IO items KEY/shard_OFFSET_SHAPE, common.pt,
metadata.json; Megatron's own save needs CUDA, so the files are written without it). PyTorch's
load: torch.distributed.checkpoint.load into preallocated tensors, one process (what a torch_dist
load does per rank, here for the whole checkpoint). The conversion reads the same files and
writes one dcp step (commit included). Ratio: PyTorch's load time / the conversion's time.
"""

import argparse
import io
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

from bench_common import drop_caches  # noqa: E402

ROWS, COLS = 4096, 1024  # 16 MiB float32 tensors


def write_torch_dist(path, gib):
    from torch.distributed.checkpoint import FileSystemWriter, save
    from torch.distributed.checkpoint.default_planner import DefaultSavePlanner

    class MCoreLikePlanner(DefaultSavePlanner):  # Megatron's planner writes BYTE_IO items as they are
        def transform_object(self, write_item, object):  # noqa: A002 - DCP's signature
            return object

    n = max(1, int(gib * (1 << 30) // (ROWS * COLS * 4)))
    g = torch.Generator().manual_seed(0)
    state = {f"decoder.layers.{i}.weight": torch.randn(ROWS, COLS, generator=g) for i in range(n)}
    for i in range(4):
        buf = io.BytesIO()
        torch.save([{"seed": i, "step": 100}], buf)
        state[f"rng_state/shard_{i}_4"] = buf
    save(state, storage_writer=FileSystemWriter(path, thread_count=2), planner=MCoreLikePlanner(flatten_state_dict=False),
         no_dist=True)
    torch.save({"iteration": 100, "checkpoint_version": 3.0}, os.path.join(path, "common.pt"))
    with open(os.path.join(path, "metadata.json"), "w") as f:
        json.dump({"sharded_backend": "torch_dist", "sharded_backend_version": 1, "common_backend": "torch",
                   "common_backend_version": 1}, f)
    return n * ROWS * COLS * 4, n


def torch_load(path, n):
    from torch.distributed.checkpoint import FileSystemReader, load
    state = {f"decoder.layers.{i}.weight": torch.empty(ROWS, COLS) for i in range(n)}
    for t in state.values():
        t.zero_()  # a job's tensors exist (touched) before a load
    t0 = time.perf_counter()
    load(state, storage_reader=FileSystemReader(path), no_dist=True)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--root", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    import dcp.convert as convert
    root = a.root or tempfile.mkdtemp(prefix="dcp-convert-bench-")
    os.makedirs(root, exist_ok=True)
    src, store = os.path.join(root, "torch_dist"), os.path.join(root, "store")
    try:
        nbytes, n = write_torch_dist(src, a.gib)
        dropped = drop_caches()
        t_torch = torch_load(src, n)
        drop_caches()
        t0 = time.perf_counter()
        report = convert.from_torch_dist(store, src)
        t_convert = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = t_torch / t_convert
    print(f"convert_bench: torch_dist of {nbytes / 1e9:.2f} GB ({n} tensors of 16 MiB, 4 objects); page cache "
          f"{'dropped' if dropped else 'NOT dropped (needs root)'} before each phase")
    print(f"  PyTorch's own load (torch.distributed.checkpoint.load): {t_torch:.2f} s ({nbytes / t_torch / 1e9:.2f} GB/s)")
    print(f"  dcp.convert from-torch-dist (read + write + commit):    {t_convert:.2f} s "
          f"({nbytes / t_convert / 1e9:.2f} GB/s); {ratio:.2f}x PyTorch's load time")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"bench": "convert", "bytes": nbytes, "torch_load_s": t_torch, "convert_s": t_convert,
                       "figures": [{"name": "torch_dist -> dcp: PyTorch's load time / conversion time",
                                    "value": ratio, "goal": "", "met": None}],
                       "report": {k: v for k, v in dict(report).items() if isinstance(v, (int, float, str))}}, f,
                      indent=2)


if __name__ == "__main__":
    main()
