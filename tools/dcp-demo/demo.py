"""The Python demo: a GPT-like Megatron sharded state dict saved and loaded
through dcp's Megatron layer, under torchrun (torch.distributed, gloo).

    torchrun --nproc-per-node 4 tools/dcp-demo/demo.py save --root R --tp 2 --pp 2
    torchrun --nproc-per-node 2 tools/dcp-demo/demo.py load --root R --tp 1 --pp 2

`load` checks every loaded element against the values the save used, and the
common state; it exits 1 on any difference.
"""

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_state  # noqa: E402

import dcp  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("save", "load"))
    p.add_argument("--root", required=True)
    p.add_argument("--tp", type=int, default=2)
    p.add_argument("--pp", type=int, default=2)
    p.add_argument("--step", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--ffn", type=int, default=1024)
    a = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != a.tp * a.pp:
        raise SystemExit(f"{world} ranks cannot hold TP{a.tp} x PP{a.pp}")
    cfg = gpt_state.Config(a.hidden, a.layers, a.vocab, a.ffn)
    t0 = time.perf_counter()
    if a.mode == "save":
        sd = gpt_state.sharded_state_dict(cfg, a.tp, a.pp, rank)
        report = dcp.save(sd, a.root, step=a.step)
        dist.barrier()
        total = torch.tensor([report.raw_bytes_written], dtype=torch.int64)
        dist.all_reduce(total)
        if rank == 0:
            print(f"saved step {a.step} from {world} ranks (TP{a.tp} x PP{a.pp}) through dcp.save: "
                  f"{total.item() / 2**20:.1f} MiB written in {time.perf_counter() - t0:.2f} s")
        ok = True
    else:
        req = gpt_state.sharded_state_dict(cfg, a.tp, a.pp, rank, empty=True)
        del req["rng_state"]  # objects do not reshard: this grid's cells were not saved
        state = dcp.load(req, a.root, step=a.step, strict=dcp.StrictHandling.LOG_ALL)
        msg = gpt_state.check(state, req, cfg, a.tp, a.pp, rank)
        if not msg and (state["iteration"] != 100 or state["args"]["num_layers"] != cfg.layers):
            msg = "common state differs"
        ok = not msg
        flags = torch.tensor([0 if ok else 1], dtype=torch.int64)
        dist.all_reduce(flags)
        if msg:
            print(f"rank {rank}: {msg}", file=sys.stderr)
        if rank == 0 and flags.item() == 0:
            print(f"loaded step {a.step} into {world} ranks (TP{a.tp} x PP{a.pp}): every element checked "
                  f"in {time.perf_counter() - t0:.2f} s")
        ok = ok and flags.item() == 0
    dist.destroy_process_group()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
