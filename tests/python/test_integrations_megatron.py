"""dcp as a Megatron-Core dist_checkpointing backend (dcp.integrations.megatron), with real gloo
process groups on the CPU: Megatron's own ShardedTensor / ShardedObject / factories saved by 4
ranks (TP2 x PP2) and loaded by 2 (TP1 x PP2).

Needs megatron-core (PyPI, in the venv of scripts/venv.sh); skipped where it is not installed."""

import json
import os
import zlib

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import damage
import dcp

try:
    from megatron.core import dist_checkpointing as mcp
    from megatron.core.dist_checkpointing import serialization
    from megatron.core.dist_checkpointing import ShardedObject, ShardedTensor
    from megatron.core.dist_checkpointing.mapping import CheckpointingException, ShardedTensorFactory
    from megatron.core.dist_checkpointing.strategies.fully_parallel import FullyParallelSaveStrategyWrapper
    from megatron.core.dist_checkpointing.validation import StrictHandling

    from dcp.integrations.megatron import DcpLoadShardedStrategy, DcpSaveShardedStrategy, install
    MEGATRON = True
except ImportError:
    MEGATRON = False
pytestmark = pytest.mark.skipif(not MEGATRON, reason="megatron-core is not installed (scripts/venv.sh installs it)")

H, V, L = 8, 12, 2  # hidden size, vocabulary, layers (one per pipeline stage)


def _global(name, shape, step):
    """The global value of a tensor at a training step (every rank computes the same)."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}@{step}".encode()))
    return torch.randn(*shape, generator=g)


def _split(key, t, replica_id, flattened_range):
    """A factory's build: the tensor as two halves along axis 0 (like Megatron's SwiGLU fc1 split)."""
    a, b = torch.chunk(t, 2)
    return {"a": ShardedTensor.from_rank_offsets(f"{key}.a", a, replica_id=replica_id),
            "b": ShardedTensor.from_rank_offsets(f"{key}.b", b, replica_id=replica_id)}


def _merge(sd):
    return torch.cat([sd["a"], sd["b"]])


def _state(tp, pp, rank, step, empty=False):
    """A Megatron sharded state dict of rank `rank` in a TP x PP layout."""
    tp_rank, pp_rank = rank % tp, rank // tp
    layer = pp_rank  # one layer per stage
    emb = _global("emb", (V, H), step)
    w = _global(f"layer{layer}.w", (4 * H, H), step)
    norm = _global(f"layer{layer}.norm", (H,), step)
    fused = _global(f"layer{layer}.fused", (4, H), step)

    def data(t):
        return torch.zeros_like(t) if empty else t.clone()
    rows = V // tp
    sd = {
        # TP-sharded along the vocabulary; stage 0 owns it, replicated nowhere else.
        "embedding": ShardedTensor.from_rank_offsets(
            "embedding.weight", data(emb[tp_rank * rows:(tp_rank + 1) * rows]), (0, tp_rank, tp),
            replica_id=0 if pp_rank == 0 else 1),
        # One layer per stage, stacked on a prepended layer axis; TP-sharded along rows.
        "layers": {
            "w": ShardedTensor.from_rank_offsets(
                "decoder.w", data(w[tp_rank * (4 * H // tp):(tp_rank + 1) * (4 * H // tp)]),
                (0, layer, L), (1, tp_rank, tp), prepend_axis_num=1),
            # Replicated across TP: tp_rank 0 is the main replica.
            "norm": ShardedTensor.from_rank_offsets("decoder.norm", data(norm), (0, layer, L), replica_id=tp_rank,
                                                    prepend_axis_num=1),
            "fused": ShardedTensorFactory(f"layer{layer}.fused", data(fused), _split, _merge, replica_id=tp_rank),
        },
        "rng": ShardedObject("rng_state", None if empty else {"seed": 1234 + rank, "state": (3, (1, 2), None)},
                             (tp, pp), (tp_rank, pp_rank), replica_id=0),
        "iteration": step,
    }
    return sd


def _init(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg-{world}", rank=rank, world_size=world)


def _save_worker(rank, world, tmp, save_dir):
    _init(rank, world, tmp)
    for step, make in ((10, lambda: DcpSaveShardedStrategy()),
                       (20, lambda: FullyParallelSaveStrategyWrapper(DcpSaveShardedStrategy(), dist.group.WORLD)),
                       (30, lambda: DcpSaveShardedStrategy())):
        d = os.path.join(save_dir, f"iter_{step:07d}")
        os.makedirs(d, exist_ok=True)
        dist.barrier()
        # Steps 20 and 30 save the values of step 10 again: every chunk is referenced.
        sd = _state(2, 2, rank, 10)
        sd["iteration"] = step
        strategy = make()
        if step == 30:
            request = mcp.save(sd, d, sharded_strategy=strategy, async_sharded_save=True)
            request.execute_sync()
        else:
            mcp.save(sd, d, sharded_strategy=strategy)
        inner = strategy.base_strategy if hasattr(strategy, "base_strategy") else strategy
        report = inner.last_report
        counts = torch.tensor([report.chunks_written, report.chunks_referenced])
        dist.all_reduce(counts)
        assert inner.last_step == step
        if step == 10:
            assert counts[0].item() > 0 and counts[1].item() == 0, counts
        else:
            assert counts[0].item() == 0 and counts[1].item() > 0, (step, counts)
    dist.destroy_process_group()


def _check(state, tp, pp, rank, step):
    ref = _state(tp, pp, rank, step)
    assert torch.equal(state["embedding"], ref["embedding"].data)
    assert torch.equal(state["layers"]["w"], ref["layers"]["w"].data)
    assert torch.equal(state["layers"]["norm"], ref["layers"]["norm"].data)
    assert torch.equal(state["layers"]["fused"], ref["layers"]["fused"].data)


def _load_worker(rank, world, tmp, save_dir):
    _init(rank, world, tmp)
    tp, pp = 1, 2
    d10 = os.path.join(save_dir, "iter_0000010")
    for step_dir in ("iter_0000010", "iter_0000020", "iter_0000030"):
        req = _state(tp, pp, rank, 10, empty=True)
        del req["rng"]  # objects do not reshard: a TP1 layout has other cells
        state = mcp.load(req, os.path.join(save_dir, step_dir), sharded_strategy=DcpLoadShardedStrategy())
        _check(state, tp, pp, rank, 10)
        assert state["iteration"] == int(step_dir[5:])  # Megatron's common state (its common.pt)

    # An object cell of the saved TP2 grid comes back as it was (tuples kept).
    # (Megatron's access check wants every saved cell requested: off for this partial request.)
    req = {"rng": ShardedObject("rng_state", None, (2, 2), (1, rank), replica_id=0)}
    state = mcp.load(req, d10, sharded_strategy=DcpLoadShardedStrategy(), validate_access_integrity=False)
    assert state["rng"] == {"seed": 1234 + 2 * rank + 1, "state": (3, (1, 2), None)}

    # install(): a plain load of a dcp-written directory picks dcp by itself.
    install()
    req = _state(tp, pp, rank, 10, empty=True)
    del req["rng"]
    _check(mcp.load(req, d10), tp, pp, rank, 10)

    # Megatron's strict modes, with one unexpected key (not in the checkpoint) and missing ones
    # (the saved rng_state cells and the factory's pieces left out of the request).
    for mode in StrictHandling:
        req = _state(tp, pp, rank, 10, empty=True)
        del req["rng"]
        del req["layers"]["fused"]
        req["extra"] = ShardedTensor.from_rank_offsets("not.saved", torch.zeros(3), replica_id=rank)
        if mode in (StrictHandling.RAISE_UNEXPECTED, StrictHandling.RAISE_ALL):
            with pytest.raises(CheckpointingException, match="not.saved"):
                mcp.load(req, d10, sharded_strategy=DcpLoadShardedStrategy(), strict=mode)
            continue
        if mode in (StrictHandling.ASSUME_OK_UNEXPECTED,):
            # Megatron trusts the request: the unexpected key reaches the storage, which names it.
            with pytest.raises(Exception, match="not.saved"):
                mcp.load(req, d10, sharded_strategy=DcpLoadShardedStrategy(), strict=mode)
            continue
        out = mcp.load(req, d10, sharded_strategy=DcpLoadShardedStrategy(), strict=mode)
        if mode in (StrictHandling.RETURN_UNEXPECTED, StrictHandling.RETURN_ALL):
            state, missing, unexpected = out
            assert unexpected == {"not.saved"}, (mode, unexpected)
            if mode == StrictHandling.RETURN_ALL:
                assert missing == {"layer0.fused.a", "layer0.fused.b", "layer1.fused.a", "layer1.fused.b", "rng_state"}, missing
        else:
            state = out
        _check({**state, "layers": {**state["layers"], "fused": _state(tp, pp, rank, 10)["layers"]["fused"].data}},
               tp, pp, rank, 10)
    dist.destroy_process_group()


def _spawn(fn, world, *args):
    mp.spawn(fn, args=(world,) + args, nprocs=world, join=True)


def test_megatron_state_saved_by_4_ranks_tp2_pp2_loads_on_2_ranks_tp1_pp2(tmp_path):
    save_dir = str(tmp_path / "ckpt")
    _spawn(_save_worker, 4, str(tmp_path), save_dir)
    # Three iterations, one store next to them; each directory points to its step.
    assert sorted(os.listdir(save_dir)) == ["dcp_store", "iter_0000010", "iter_0000020", "iter_0000030"]
    with open(os.path.join(save_dir, "iter_0000020", "dcp.json")) as f:
        assert json.load(f) == {"store": "../dcp_store", "step": 20}
    with open(os.path.join(save_dir, "iter_0000020", "metadata.json")) as f:
        assert json.load(f)["sharded_backend"] == "dcp"
    with dcp.Store.open(os.path.join(save_dir, "dcp_store"), "self", read_only=True) as s:
        assert s.steps() == [10, 20, 30]
    _spawn(_load_worker, 2, str(tmp_path), save_dir)

    # Metadata queries and removal, on one process.
    d10 = os.path.join(save_dir, "iter_0000010")
    meta = mcp.load_tensors_metadata(d10, DcpLoadShardedStrategy())
    assert meta["decoder.w"].global_shape == (L, 4 * H, H) and meta["embedding.weight"].dtype == torch.float32
    sharded = serialization.load_sharded_metadata(d10, DcpLoadShardedStrategy())
    assert "rng_state/shard_1.1_2.2" in sharded and "layer1.fused.b" in sharded
    DcpLoadShardedStrategy().remove_sharded_tensors(d10, "layer")
    meta = mcp.load_tensors_metadata(d10, DcpLoadShardedStrategy())
    assert not any(k.startswith("layer") for k in meta) and "decoder.w" in meta
    meta = mcp.load_tensors_metadata(os.path.join(save_dir, "iter_0000020"), DcpLoadShardedStrategy())
    assert "layer0.fused.a" in meta  # another iteration's step is untouched


def _bad_worker(rank, world, tmp, save_dir):
    _init(rank, world, tmp)
    d = os.path.join(save_dir, "iter_0000001")
    os.makedirs(d, exist_ok=True)
    dist.barrier()
    # An object only pickle can store: a TypeError naming it on every rank, nothing committed.
    sd = {"o": ShardedObject("opaque", object() if rank == 0 else {"ok": 1}, (2,), (rank,), replica_id=0)}
    with pytest.raises(TypeError, match="opaque/shard_0_2"):
        mcp.save(sd, d, sharded_strategy=DcpSaveShardedStrategy())
    assert not os.path.exists(os.path.join(save_dir, "dcp_store"))

    # A flipped byte in the step's manifest: dcp's DataLossError on every rank.
    sd = {"t": ShardedTensor.from_rank_offsets("t", torch.full((4,), float(rank)), (0, rank, world))}
    mcp.save(sd, d, sharded_strategy=DcpSaveShardedStrategy())
    dist.barrier()
    if rank == 0:
        damage.flip_manifest_byte(os.path.join(save_dir, "dcp_store"), 0x04)
    dist.barrier()
    with pytest.raises(dcp.DataLossError):
        mcp.load({"t": ShardedTensor.from_rank_offsets("t", torch.zeros(4), (0, rank, world))}, d,
                 sharded_strategy=DcpLoadShardedStrategy())
    dist.destroy_process_group()


def test_bad_input(tmp_path):
    _spawn(_bad_worker, 2, str(tmp_path), str(tmp_path / "ckpt"))
    # A Megatron torch_dist directory is not dcp's: the error names its format.
    d = tmp_path / "torch_dist"
    d.mkdir()
    (d / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                                                 "common_backend": "torch", "common_backend_version": 1}))
    with pytest.raises(CheckpointingException, match="'torch_dist'.*dcp.convert from-torch-dist"):
        mcp.load_tensors_metadata(str(d), DcpLoadShardedStrategy())
    # A directory without dcp.json is named.
    (d / "metadata.json").write_text(json.dumps({"sharded_backend": "dcp", "sharded_backend_version": 1,
                                                 "common_backend": "torch", "common_backend_version": 1}))
    with pytest.raises(CheckpointingException, match="dcp.json"):
        mcp.load_tensors_metadata(str(d), DcpLoadShardedStrategy())


def _release_worker(rank, world, tmp, save_dir):
    _init(rank, world, tmp)
    deleted = []
    for it in (1, 2, 3):
        d = os.path.join(save_dir, f"iter_{it:07d}")
        os.makedirs(d, exist_ok=True)
        if it == 3 and rank == 0:
            import shutil
            shutil.rmtree(os.path.join(save_dir, "iter_0000001"))  # as a user or a rotation script would
        dist.barrier()
        sd = {"t": ShardedTensor.from_rank_offsets("t", torch.full((4,), float(it)), (0, rank, world))}
        strategy = DcpSaveShardedStrategy()
        if it == 3:  # async: the steps go at finalization, with dcp.json
            mcp.save(sd, d, sharded_strategy=strategy, async_sharded_save=True).execute_sync()
        else:
            mcp.save(sd, d, sharded_strategy=strategy)
        deleted.append(strategy.last_deleted_steps)
    assert deleted == [[], [], [1]], deleted  # on every rank
    # The release object is no key of the checkpoint: strict loads see only the state's own keys.
    d = os.path.join(save_dir, "iter_0000002")
    assert "__dcp_step_directory__" not in serialization.load_sharded_metadata(d, DcpLoadShardedStrategy())
    out = mcp.load({"t": ShardedTensor.from_rank_offsets("t", torch.zeros(4), (0, rank, world))}, d,
                   sharded_strategy=DcpLoadShardedStrategy(), strict=StrictHandling.RAISE_ALL)
    assert torch.equal(out["t"], torch.full((4,), 2.0))
    # A directory elsewhere saving into this store (store=) is not watched: its step stays.
    other = os.path.join(tmp, "elsewhere", "iter_0000005")
    os.makedirs(other, exist_ok=True)
    dist.barrier()
    sd = {"t": ShardedTensor.from_rank_offsets("t", torch.full((4,), 5.0), (0, rank, world))}
    mcp.save(sd, other, sharded_strategy=DcpSaveShardedStrategy(store=os.path.join(save_dir, "dcp_store")))
    os.makedirs(os.path.join(save_dir, "iter_0000006"), exist_ok=True)
    dist.barrier()
    strategy = DcpSaveShardedStrategy()
    mcp.save(sd, os.path.join(save_dir, "iter_0000006"), sharded_strategy=strategy)
    assert strategy.last_deleted_steps == []
    dist.destroy_process_group()


def test_removed_iteration_directories_release_their_steps(tmp_path):
    save_dir = tmp_path / "ckpt"
    _spawn(_release_worker, 2, str(tmp_path), str(save_dir))
    with dcp.Store.open(str(save_dir / "dcp_store"), "self", read_only=True) as s:
        assert s.steps() == [2, 3, 5, 6]
