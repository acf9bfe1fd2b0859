"""Real process groups: ranks spawned with torch.multiprocessing over gloo
(Debian's torch 1.13 has no working torchrun on Python 3.11)."""

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import dcp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "dcp-demo"))
import gpt_state  # noqa: E402


def _init(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg-{world}", rank=rank, world_size=world)


def _save_worker(rank, world, tmp, root, tp, pp):
    _init(rank, world, tmp)
    cfg = gpt_state.Config()
    sd = gpt_state.sharded_state_dict(cfg, tp, pp, rank)
    report = dcp.save(sd, root, step=1)
    assert report.chunks_written > 0
    dist.destroy_process_group()


def _spawn(fn, world, *args):
    mp.spawn(fn, args=(world,) + args, nprocs=world, join=True)


def test_tp2_pp2_saved_by_4_ranks_loads_at_tp1_pp2_on_2_ranks(tmp_path):
    root = str(tmp_path / "store")
    _spawn(_save_worker, 4, str(tmp_path), root, 2, 2)
    out = tmp_path / "out"
    out.mkdir()
    # The load asks for the TP1 x PP2 layout; rng_state cells of the TP2 grid are not
    # requested (objects do not reshard), so the request leaves them out.
    _spawn(_load_worker_no_objects, 2, str(tmp_path), root, 1, 2, str(out))
    assert [(out / f"rank{r}").read_text() for r in range(2)] == ["ok", "ok"]
    meta = dcp.load_sharded_metadata(root)
    assert "rng_state/shard_1.1_2.2" in meta


def _load_worker_no_objects(rank, world, tmp, root, tp, pp, out):
    _init(rank, world, tmp)
    cfg = gpt_state.Config()
    req = gpt_state.sharded_state_dict(cfg, tp, pp, rank, empty=True)
    del req["rng_state"]
    state = dcp.load(req, root, step=1, strict=dcp.StrictHandling.LOG_ALL)
    msg = gpt_state.check(state, req, cfg, tp, pp, rank)
    if not msg and state["iteration"] != 100:
        msg = "common state"
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write(msg or "ok")
    dist.destroy_process_group()


def _bad_worker(rank, world, tmp, root, out):
    _init(rank, world, tmp)
    shape = (4, 6) if rank != 1 else (4, 7)  # rank 1 disagrees on the global shape
    t = torch.zeros(2, shape[1])
    st = dcp.ShardedTensor.from_rank_offsets("w", t, (0, rank, 2))
    try:
        dcp.save({"w": st}, root, step=2)
        msg = "no error"
    except dcp.InvalidArgumentError as e:
        msg = "InvalidArgumentError: " + str(e)
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write(msg)
    dist.destroy_process_group()


def _outcomes(fn, world, tmp_path):
    """Spawns `world` ranks of fn(rank, world, tmp, root, out) on a fresh store; (root, what each
    rank wrote to out/rank<r>)."""
    root = str(tmp_path / "store")
    out = tmp_path / "out"
    out.mkdir()
    _spawn(fn, world, str(tmp_path), root, str(out))
    return root, [(out / f"rank{r}").read_text() for r in range(world)]


def _same_lines(fn, world, tmp_path):
    """_outcomes of a worker that writes one line per call: (root, the lines), asserted the same on
    every rank."""
    root, texts = _outcomes(fn, world, tmp_path)
    outcomes = [t.split("\n") for t in texts]
    assert all(o == outcomes[0] for o in outcomes), outcomes
    return root, outcomes[0]


def test_bad_input_raises_the_same_error_on_every_rank_and_commits_nothing(tmp_path):
    root, msgs = _outcomes(_bad_worker, 2, tmp_path)
    assert msgs[0] == msgs[1]
    assert msgs[0].startswith("InvalidArgumentError") and "key 'w': rank 0 declares float32 (4, 6) but rank 1 " \
        "declares float32 (4, 7)" in msgs[0]
    assert dcp.Store.open(root, "self", read_only=True).steps() == []


def _attempt(outcome, what, call, type_error=False):
    """Appends to `outcome` what call() raised (class and message; with type_error, whether it is
    a TypeError too), or that it raised nothing."""
    try:
        call()
        outcome.append(f"{what}: no error")
    except dcp.DcpError as e:
        also = f" {isinstance(e, TypeError)}" if type_error else ""
        outcome.append(f"{what}: {type(e).__name__}{also} {e}")


def _one_rank_bad_worker(rank, world, tmp, root, out):
    """Each call fails on one rank only, in the Python layer's conversion of its arguments."""
    import numpy as np
    _init(rank, world, tmp)
    rows = torch.full((2, 4), float(rank))
    outcome = []

    def attempt(what, call):
        _attempt(outcome, what, call, type_error=True)

    def shard(data):
        return dcp.ShardedTensor.from_rank_offsets("w", data, (0, rank, world))

    # rank 1's common state holds a function; rank 0 saves a sparse tensor.
    attempt("put", lambda: dcp.save({"w": shard(rows), "fn": (lambda: 0) if rank == 1 else 0}, root, step=1))
    with dcp.Store.open(root) as store:
        attempt("put_async", lambda: store.put_async(1, {"w": shard(rows.to_sparse() if rank == 0 else rows)}))
        store.begin_step(1)
        attempt("put_part", lambda: store.put_part({"w": shard(rows), "opt": {"lr": [0.1, object()] if rank else 1}}))
        store.put_part({"w": shard(rows)})
        store.commit_step()
        # rank 0 loads into a read-only NumPy array.
        dest = np.zeros((2, 4), np.float32)
        dest.setflags(write=rank != 0)
        attempt("get", lambda: store.get(1, {"w": shard(dest)}))
        # The options that add collectives (strict modes, read_once) reach the core on the
        # failing rank too.
        attempt("get strict", lambda: store.get(1, {"w": shard(dest)}, strict=dcp.StrictHandling.LOG_ALL))
        attempt("get read_once", lambda: store.get(1, {"w": shard(dest)}, read_once=True))
        got = torch.zeros(2, 4)
        store.get(1, {"w": shard(got)})
        if not torch.equal(got, rows):
            outcome.append("the step committed after the refused part is wrong")
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write("\n".join(outcome))
    dist.destroy_process_group()


def test_a_conversion_failing_on_one_rank_raises_on_every_rank_and_hangs_none(tmp_path):
    root, lines = _same_lines(_one_rank_bad_worker, 2, tmp_path)
    put, put_async, put_part, get, get_strict, get_read_once = lines
    assert put.startswith("put: InvalidTypeError True put of step 1: rank 1: TypeError: common state 'fn' is of "
                          "type 'function'"), put
    assert put_async.startswith("put_async: InvalidArgumentError False async put of step 1: rank 0: tensor 'w' "
                                "(entry 'w'): sparse tensors are not supported"), put_async
    assert put_part.startswith("put_part: InvalidTypeError True put: rank 1: TypeError: common state 'opt.lr[1]' "
                               "is of type 'object'"), put_part
    assert get.startswith("get: InvalidArgumentError False get of step 1: rank 0: tensor 'w' (entry 'w'): the NumPy "
                          "array is read-only"), get
    assert get_strict == get.replace("get:", "get strict:", 1), get_strict
    assert get_read_once == get.replace("get:", "get read_once:", 1), get_read_once
    assert dcp.Store.open(root, "self", read_only=True).steps() == [1]


def _mixed_arguments_worker(rank, world, tmp, root, out):
    """Calls whose arguments differ between the ranks: one rank names a step and the other asks
    for the latest (or the next), or their options differ."""
    _init(rank, world, tmp)
    rows = torch.full((2, 4), float(rank))
    outcome = []

    def attempt(what, call):
        _attempt(outcome, what, call)

    def sd(data):
        return {"w": dcp.ShardedTensor.from_rank_offsets("w", data, (0, rank, world))}

    dcp.save(sd(rows), root)  # step 0, chosen as "the next" on both ranks
    attempt("save", lambda: dcp.save(sd(rows), root, step=None if rank == 0 else 5))
    attempt("load", lambda: dcp.load(sd(torch.zeros(2, 4)), root, step=None if rank == 0 else 7))
    attempt("load strict", lambda: dcp.load(sd(torch.zeros(2, 4)), root, strict="raise_all" if rank else "log_all"))
    attempt("remove", lambda: dcp.remove_sharded_tensors(root, "w", step=0 if rank == 0 else None, into_step=1 + rank))
    with dcp.Store.open(root) as store:
        attempt("delete", lambda: store.delete_step(rank))
        # A step that is no step on one rank: refused there, and the others do not wait.
        attempt("put bad step", lambda: store.put(-1 if rank == 1 else 3, sd(rows)))
        attempt("get bad step", lambda: store.get("0" if rank == 1 else 0, sd(torch.zeros(2, 4))))
        attempt("put_async bad step", lambda: store.put_async(3 if rank == 1 else 2.0, sd(rows)))
        attempt("begin_step bad option", lambda: store.begin_step(3, **({"bogus": 1} if rank == 1 else {})))
        attempt("delete bad step", lambda: store.delete_step(-1 if rank == 1 else 5))
        attempt("retention bad step", lambda: store.apply_retention(keep_last=1, keep_steps=["0"] if rank else [0]))
        attempt("remove bad prefix", lambda: store.remove_tensors(0, 7 if rank == 1 else "w"))
        attempt("gc bad fraction", lambda: store.collect_garbage("x" if rank == 1 else 0.5))
        attempt("delete bool step", lambda: store.delete_step(True if rank == 0 else 1))
    got = torch.zeros(2, 4)
    dcp.load(sd(got), root)  # the one step, unchanged
    if not torch.equal(got, rows):
        outcome.append("step 0 changed")
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write("\n".join(outcome))
    dist.destroy_process_group()


def test_ranks_whose_arguments_differ_fail_together_by_name(tmp_path):
    root, lines = _same_lines(_mixed_arguments_worker, 2, tmp_path)
    same_call = "every rank must make the same call"
    expected = [
        "save: InvalidArgumentError rank 1 saves step 5 but rank 0 step 1: every rank must save the same step",
        "load: InvalidArgumentError get of step 0: rank 1: rank 1 gets step 7 but rank 0 step 0: every rank must "
        "get the same step",
        "load strict: InvalidArgumentError get of step 0: rank 1: rank 1 gets with strict handling 'raise_all' but "
        "rank 0 with 'log_all': every rank must use the same",
        "remove: InvalidArgumentError rank 1 calls RemoveTensors(step 0, prefix 'w', into step 2) but rank 0 "
        f"RemoveTensors(step 0, prefix 'w', into step 1): {same_call}",
        f"delete: InvalidArgumentError rank 1 calls DeleteStep(1) but rank 0 DeleteStep(0): {same_call}",
        # A rank's own bad argument: a put or get is named by rank 0's step on every rank.
        "put bad step: InvalidArgumentError put of step 3: rank 1: step -1 is outside [0, 2**64)",
        "get bad step: InvalidTypeError get of step 0: rank 1: TypeError: step '0': expected an int, not str",
        "put_async bad step: InvalidTypeError async put of step 0: rank 0: TypeError: step 2.0: expected an int, "
        "not float",
        "begin_step bad option: InvalidTypeError put of step 3: rank 1: TypeError: _save_options() got an "
        "unexpected keyword argument 'bogus'",
        # The failing rank's own error first (it called with placeholders); annotated only where
        # the calls are the same (rank 1's placeholder 0 for the kept step is rank 0's 0).
        "delete bad step: InvalidArgumentError rank 1: step -1 is outside [0, 2**64)",
        "retention bad step: InvalidTypeError retention: rank 1: TypeError: kept step '0': expected an int, not str",
        "remove bad prefix: InvalidTypeError rank 1: TypeError: key_prefix 7: expected a str, not int",
        "gc bad fraction: InvalidTypeError garbage collection: rank 1: TypeError: compact_dead_fraction 'x': could "
        "not convert string to float: 'x'",
        "delete bool step: InvalidTypeError rank 0: TypeError: step True: expected an int, not bool",
    ]
    assert lines == expected
    assert dcp.Store.open(root, "self", read_only=True).steps() == [0]


def _irregular_worker(rank, world, tmp, root, out):
    """Uneven, several and empty shards per rank; an async put while the caller overwrites its
    tensors; missing and unexpected keys agreed across ranks."""
    _init(rank, world, tmp)
    full = torch.arange(30, dtype=torch.float32)
    cuts = {0: [(0, 1), (6, 13)], 1: [(1, 6), (13, 13)], 2: [(13, 30)]}  # [13, 13) is empty
    sd = {f"s{i}": dcp.ShardedTensor("v", full[a:b].clone(), torch.float32, (b - a,), (30,), (a,))
          for i, (a, b) in enumerate(cuts[rank])}
    sd["other"] = dcp.ShardedTensor.from_rank_offsets("o", torch.full((2,), float(rank)), (0, rank, world))
    with dcp.Store.open(root) as store:
        store.put_async(1, sd)
        for t in sd.values():
            t.data.fill_(-7)  # the snapshot was taken: this must not reach the store
        report = store.wait()
        assert report.chunks_written >= 1
        # Another layout: 2 uneven pieces per rank of a 3-way split that differs from the save.
        bounds = [0, 4, 4, 17, 22, 29, 30]
        req = {f"p{j}": dcp.ShardedTensor("v", torch.zeros(bounds[2 * rank + j + 1] - bounds[2 * rank + j]),
                                           torch.float32, (bounds[2 * rank + j + 1] - bounds[2 * rank + j],), (30,),
                                           (bounds[2 * rank + j],)) for j in range(2)}
        req["extra"] = dcp.ShardedTensor.from_rank_offsets("nope", torch.zeros(1))
        res = store.get(1, req, strict=dcp.StrictHandling.RETURN_ALL)
        ok = all(torch.equal(req[f"p{j}"].data, full[bounds[2 * rank + j]:bounds[2 * rank + j + 1]]) for j in range(2))
        msg = "ok" if ok and res.missing_keys == ["o"] and res.unexpected_keys == ["nope"] else \
            f"values {ok}, missing {res.missing_keys}, unexpected {res.unexpected_keys}"
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write(msg)
    dist.destroy_process_group()


def test_irregular_shards_async_put_and_strict_keys_over_three_ranks(tmp_path):
    root = str(tmp_path / "store")
    out = tmp_path / "out"
    out.mkdir()
    _spawn(_irregular_worker, 3, str(tmp_path), root, str(out))
    assert [(out / f"rank{r}").read_text() for r in range(3)] == ["ok"] * 3


def _comm_worker(rank, world, tmp, out):
    """dcp's torch.distributed communicator: messages around its inline slots (an all-gather's and a
    broadcast's) and past them, on the world and on a subgroup."""
    _init(rank, world, tmp)
    from dcp.comm import TorchCommunicator
    c = TorchCommunicator()
    assert 248 <= c._gather_slot == (64 << 10) - 8 < c._bcast_slot == (256 << 10) - 8
    sizes = [0, 1, 248, 249, c._gather_slot, c._gather_slot + 1, 200000, c._bcast_slot, c._bcast_slot + 1]
    msg = lambda r, n: bytes((r * 7 + i) % 256 for i in range(n))  # noqa: E731
    ok = True
    for n in sizes:
        for root in range(world):
            ok &= c.broadcast(root, msg(root, n) if rank == root else b"junk") == msg(root, n)
        ok &= c.allgather(msg(rank, n + rank)) == [msg(r, n + r) for r in range(world)]
        got = c.gather(1, msg(rank, n * rank))
        ok &= got == ([msg(r, n * r) for r in range(world)] if rank == 1 else [])
        ok &= c.alltoall([msg(rank * 10 + d, n + d) for d in range(world)]) == \
            [msg(s * 10 + rank, n + rank) for s in range(world)]
    dup = c.duplicate()
    ok &= dup.allgather(b"x" * 300) == [b"x" * 300] * world
    # A subgroup whose rank 0 is not the world's: its roots are global ranks 1 and 2.
    sub = dist.new_group(ranks=[1, 2], backend="gloo")
    if rank in (1, 2):
        s = TorchCommunicator(sub)
        me = rank - 1
        for n in (5, 300, 200000, 300000):
            ok &= s.allgather(msg(me, n + me)) == [msg(r, n + r) for r in range(2)]
            ok &= s.broadcast(1, msg(9, n) if me == 1 else b"") == msg(9, n)
            ok &= s.gather(1, msg(me, n)) == ([msg(r, n) for r in range(2)] if me == 1 else [])
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write("ok" if ok else "mismatch")
    dist.destroy_process_group()


def test_torch_communicator_messages_of_every_size(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _spawn(_comm_worker, 3, str(tmp_path), str(out))
    assert [(out / f"rank{r}").read_text() for r in range(3)] == ["ok"] * 3
