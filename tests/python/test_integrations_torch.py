"""dcp as a torch.distributed.checkpoint storage (dcp.integrations.torch), with real gloo
process groups on the CPU: FSDP2 / DTensor state dicts saved by 4 ranks, loaded by 2.

Needs torch >= 2.4 (PyPI's torch 2.x: the venv of scripts/venv.sh); skipped under
Debian's torch 1.13, whose DCP has another storage interface."""

import os
import pickle
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import damage
import dcp

try:
    from torch.distributed.checkpoint import storage as _storage
except ImportError:  # torch 1.13: torch.distributed._shard.checkpoint
    _storage = None
TORCH_DCP = _storage is not None and hasattr(_storage.StorageWriter, "reset")
pytestmark = pytest.mark.skipif(not TORCH_DCP, reason=f"DCP's storage interface needs torch >= 2.4 "
                                                      f"(this is {torch.__version__})")
if TORCH_DCP:
    import torch.distributed.checkpoint as dist_cp
    from torch.distributed.checkpoint.api import CheckpointException

    from dcp.integrations.torch import LoadPlanner, SavePlanner, StorageReader, StorageWriter

SIZES = (8, 6, 3)  # the last layer has fewer rows than 4 ranks: one rank holds an empty shard


def _init(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg-{world}",
                            rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    return init_device_mesh("cpu", (world,))


def _done():
    """Ends a worker. Without interpreter finalization: torch 2.11's gloo worker threads can still be
    releasing an FSDP2 all-gather's tensors then, and need the GIL while Python tears down, which
    aborts the process ('terminate called without an active exception'; a torch exit race)."""
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _model(mesh, seed=0):
    from torch.distributed.fsdp import fully_shard
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(), torch.nn.Linear(SIZES[1], SIZES[2]))
    for layer in m:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(m, mesh=mesh)
    return m


def _train(m, opt, steps, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        opt.zero_grad()
        m(torch.randn(4, SIZES[0], generator=g)).pow(2).sum().backward()
        opt.step()


def _full(sd):
    """Whole tensors of a (nested) state dict of DTensors, for comparisons."""
    out = {}
    for k, v in sd.items():
        if isinstance(v, dict):
            for k2, v2 in _full(v).items():
                out[f"{k}.{k2}"] = v2
        elif isinstance(v, torch.Tensor):
            out[k] = v.full_tensor() if hasattr(v, "full_tensor") else v.clone()
        else:
            out[k] = v
    return out


def _save_worker(rank, world, tmp, root):
    from torch.distributed.checkpoint.state_dict import get_state_dict
    mesh = _init(rank, world, tmp)
    m = _model(mesh)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    _train(m, opt, 2, seed=1)
    msd, osd = get_state_dict(m, opt)
    state = {"model": msd, "optim": osd, "extra": {"iteration": 7, "note": "run-a", "bytes": b"\x00\x01"}}
    writer = StorageWriter(root)
    dist_cp.save(state, storage_writer=writer, planner=SavePlanner())
    assert writer.last_step == 0 and writer.last_report.chunks_written + writer.last_report.objects_written > 0
    full = _full({"model": msd, "optim": osd})  # collective: every rank
    if rank == 0:
        torch.save(full, os.path.join(tmp, "step0.pt"))

    # A second step with the first layer frozen: only the second layer's chunks are written.
    m[2].weight.data.add_(1.0)
    m[2].bias.data.add_(1.0)
    msd, _ = get_state_dict(m, opt)
    dist_cp.save({"model": msd}, storage_writer=writer, planner=SavePlanner())
    r = writer.last_report
    got = torch.tensor([r.chunks_written, r.chunks_referenced, r.raw_bytes_referenced, r.objects_written])
    dist.all_reduce(got)
    # Layer 2's 3 weight rows and 3 bias values sit on ranks 0-2 (one chunk each, 84 bytes in all);
    # layer 0's chunks are referenced (6 rows x 8 + 6 values, f32); rank 0 rewrites the planner's map.
    frozen = (SIZES[0] * SIZES[1] + SIZES[1]) * 4
    assert writer.last_step == 1 and got.tolist() == [6, 6, frozen, 1], got
    full = _full({"model": msd})
    if rank == 0:
        torch.save(full, os.path.join(tmp, "step1.pt"))
    _done()


def _load_worker(rank, world, tmp, root):
    from torch.distributed.checkpoint.state_dict import get_state_dict
    mesh = _init(rank, world, tmp)
    ref0 = torch.load(os.path.join(tmp, "step0.pt"))
    ref1 = torch.load(os.path.join(tmp, "step1.pt"))
    m = _model(mesh, seed=5)  # other values; 2 ranks: other placements of every tensor
    opt = torch.optim.AdamW(m.parameters(), lr=0.5, betas=(0.1, 0.2))
    _train(m, opt, 1, seed=9)  # creates the optimizer state to load into
    msd, osd = get_state_dict(m, opt)
    state = {"model": msd, "optim": osd, "extra": {"iteration": 0, "note": "", "bytes": b""}}

    def refuse(*a, **k):
        raise AssertionError("a load with dcp's storage and planners unpickled something")
    saved = pickle.load, pickle.loads, torch.load
    pickle.load = pickle.loads = torch.load = refuse
    try:
        dist_cp.load(state, storage_reader=StorageReader(root, step=0), planner=LoadPlanner())
    finally:
        pickle.load, pickle.loads, torch.load = saved
    got = _full({"model": state["model"], "optim": state["optim"]})
    for k, v in ref0.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(got[k], v), k
        else:
            assert got[k] == v, (k, got[k], v)
    assert state["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)  # a tuple, as saved
    assert state["extra"] == {"iteration": 7, "note": "run-a", "bytes": b"\x00\x01"}

    msd, _ = get_state_dict(m, opt)
    dist_cp.load({"model": msd}, checkpoint_id=root, storage_reader=StorageReader(None), planner=LoadPlanner())
    got = _full({"model": msd})
    for k, v in ref1.items():
        assert torch.equal(got[k], v), k
    _done()


def _spawn(fn, world, *args):
    mp.spawn(fn, args=(world,) + args, nprocs=world, join=True)


def test_fsdp2_model_and_adamw_saved_by_4_ranks_load_bit_exact_on_2_without_unpickling(tmp_path):
    root = str(tmp_path / "store")
    _spawn(_save_worker, 4, str(tmp_path), root)
    _spawn(_load_worker, 2, str(tmp_path), root)
    with dcp.Store.open(root, "self", read_only=True) as s:
        assert s.steps() == [0, 1]
        keys = {t["key"] for t in s.metadata(0)["tensors"]}
    assert "model.0.weight" in keys and "optim.state.2.bias.exp_avg_sq" in keys
    # dcp-inspect sees the step like any other.
    r = subprocess.run([sys.executable, "-m", "dcp.inspect", root, "show", "1"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert r.returncode == 0 and "model.2.weight" in r.stdout, r.stdout + r.stderr


# -- DTensor placements, DCP's default planners, async_save ----------------------------------------------------

def _dtensors(mesh, placement, seed):
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(12, 10, generator=g)
    b = torch.randn(5, generator=g).to(torch.bfloat16)
    p = Shard(0) if placement == 0 else Shard(1)
    return {"a": distribute_tensor(a, mesh, [p]), "b": distribute_tensor(b, mesh, [Replicate()]),
            "plain": torch.arange(6, dtype=torch.int64), "step": torch.tensor(3.0)}


def _default_and_async_save_worker(rank, world, tmp, root, root_default):
    mesh = _init(rank, world, tmp)
    sd = _dtensors(mesh, 0, seed=3)
    sd["cfg"] = {"lr": 0.1, "sizes": (1, 2)}
    # DCP's own planners: values are torch.save bytes (DCP's default behaviour).
    dist_cp.save(sd, storage_writer=StorageWriter(root_default))
    # async_save on a dedicated gloo group while the caller keeps changing its tensors.
    group = dist.new_group(backend="gloo")
    writer = StorageWriter(root, group=group)
    expect = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).clone() for k, v in sd.items()
              if isinstance(v, torch.Tensor)}
    future = dist_cp.async_save(sd, storage_writer=writer, planner=SavePlanner(), process_group=group)
    for v in sd.values():
        if isinstance(v, torch.Tensor):
            (v.to_local() if hasattr(v, "to_local") else v).add_(100)
    (future.upload_completion if hasattr(future, "upload_completion") else future).result()
    assert writer.last_step == 0
    # async_save's process executor: the writer goes (pickled, without its group) to a
    # checkpointing process per rank with a process group of its own; it writes step 1.
    from torch.distributed.checkpoint.state_dict_saver import AsyncCheckpointerType
    expect_process = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).clone() for k, v in sd.items()
                      if isinstance(v, torch.Tensor)}
    future = dist_cp.async_save(sd, storage_writer=StorageWriter(root), planner=SavePlanner(), process_group=group,
                                async_checkpointer_type=AsyncCheckpointerType.PROCESS)
    for v in sd.values():
        if isinstance(v, torch.Tensor):
            (v.to_local() if hasattr(v, "to_local") else v).add_(100)
    (future.upload_completion if hasattr(future, "upload_completion") else future).result()
    # DCP's plan caching (process-wide, per planner class), a new writer each save: step 2
    # fills the cache; in step 3 only rank 0's plan changes (a new value, which only the
    # coordinator writes), so the other ranks send no plan and no planner data.
    for step, extra in ((2, {}), (3, {"wd": 0.5})):
        sd["cfg"] = {"lr": 0.1, "sizes": (1, 2), **extra}
        writer = StorageWriter(root)
        dist_cp.save(sd, storage_writer=writer, planner=SavePlanner(enable_plan_caching=True))
        assert writer.last_step == step
    if rank == 0:  # the step's planner data is the save's, the new value's path included
        assert StorageReader(root).read_metadata().planner_data["cfg.wd"] == ("cfg", "wd")
    expect_cached = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).clone() for k, v in sd.items()
                     if isinstance(v, torch.Tensor)}
    if rank == 0:
        torch.save(expect, os.path.join(tmp, "expect.pt"))
        torch.save(expect_process, os.path.join(tmp, "expect_process.pt"))
        torch.save(expect_cached, os.path.join(tmp, "expect_cached.pt"))
    _done()


def _placement_load_worker(rank, world, tmp, root, root_default):
    mesh = _init(rank, world, tmp)
    expect = torch.load(os.path.join(tmp, "expect.pt"))
    sd = _dtensors(mesh, 1, seed=4)  # Shard(1) on 2 ranks instead of Shard(0) on 4
    sd["cfg"] = {"lr": 0.0, "sizes": ()}
    dist_cp.load(sd, storage_reader=StorageReader(root, step=0), planner=LoadPlanner())
    for k, v in expect.items():
        got = sd[k].full_tensor() if hasattr(sd[k], "full_tensor") else sd[k]
        assert torch.equal(got, v), k
    assert sd["cfg"] == {"lr": 0.1, "sizes": (1, 2)}
    expect_process = torch.load(os.path.join(tmp, "expect_process.pt"))
    dist_cp.load(sd, storage_reader=StorageReader(root, step=1), planner=LoadPlanner())
    for k, v in expect_process.items():
        got = sd[k].full_tensor() if hasattr(sd[k], "full_tensor") else sd[k]
        assert torch.equal(got, v), k
    # The step saved with cached plans (the latest).
    sd["cfg"] = {"lr": 0.0, "sizes": (), "wd": 0.0}
    dist_cp.load(sd, storage_reader=StorageReader(root), planner=LoadPlanner())
    assert sd["cfg"] == {"lr": 0.1, "sizes": (1, 2), "wd": 0.5}
    for k, v in torch.load(os.path.join(tmp, "expect_cached.pt")).items():
        got = sd[k].full_tensor() if hasattr(sd[k], "full_tensor") else sd[k]
        assert torch.equal(got, v), k

    # The default-planner store: DCP's default load planner unpickles its own bytes; dcp's
    # LoadPlanner refuses unless told which fqns it may unpickle.
    sd = _dtensors(mesh, 1, seed=4)
    sd["cfg"] = {"lr": 0.0, "sizes": ()}
    with pytest.raises(CheckpointException) as e:
        dist_cp.load(sd, storage_reader=StorageReader(root_default), planner=LoadPlanner())
    assert "'cfg.lr' was saved pickled" in str(e.value) or "'cfg.sizes' was saved pickled" in str(e.value)
    dist_cp.load(sd, storage_reader=StorageReader(root_default),
                 planner=LoadPlanner(allow_pickle=["cfg.lr", "cfg.sizes"]))
    assert sd["cfg"] == {"lr": 0.1, "sizes": (1, 2)}
    sd["cfg"] = {"lr": 0.0, "sizes": ()}
    dist_cp.load(sd, storage_reader=StorageReader(root_default))
    assert sd["cfg"] == {"lr": 0.1, "sizes": (1, 2)}
    for k, v in expect.items():
        got = sd[k].full_tensor() if hasattr(sd[k], "full_tensor") else sd[k]
        assert torch.equal(got, v), k
    _done()


def test_dtensor_placements_default_planners_and_async_save(tmp_path):
    root, root_default = str(tmp_path / "store"), str(tmp_path / "default")
    _spawn(_default_and_async_save_worker, 4, str(tmp_path), root, root_default)
    _spawn(_placement_load_worker, 2, str(tmp_path), root, root_default)


# -- bad input --------------------------------------------------------------------------------------------------

def _failure(e, rank):
    """The exception a rank raised inside torch's CheckpointException."""
    failures = e.failures
    exc = failures.get(rank)
    return exc[0] if isinstance(exc, tuple) else getattr(exc, "exc", exc)


def _bad_input_worker(rank, world, tmp, root, plain_dir):
    mesh = _init(rank, world, tmp)
    sd = _dtensors(mesh, 0, seed=3)
    out = []

    # A value only pickle can store: refused on every rank, nothing committed.
    bad = dict(sd, cfg={"when": object()})
    with pytest.raises(CheckpointException) as e:
        dist_cp.save(bad, storage_writer=StorageWriter(root), planner=SavePlanner())
    assert "'cfg.when'" in str(e.value) and all(
        isinstance(_failure(e.value, r), dcp.InvalidTypeError) for r in range(world)), str(e.value)
    assert not os.path.exists(root)  # every rank stopped before the store was even opened

    # A plain DCP directory is not a dcp store, for loads and for saves.
    dist_cp.save(sd, checkpoint_id=plain_dir)
    for call in (lambda: dist_cp.load(dict(sd), storage_reader=StorageReader(plain_dir)),
                 lambda: dist_cp.save(sd, storage_writer=StorageWriter(plain_dir))):
        with pytest.raises(CheckpointException) as e:
            call()
        assert f"'{plain_dir}' is a PyTorch distributed checkpoint" in str(e.value), str(e.value)

    # No step yet.
    with pytest.raises(CheckpointException) as e:
        dist_cp.load(dict(sd), storage_reader=StorageReader(root))
    assert isinstance(_failure(e.value, rank), dcp.NotFoundError), str(e.value)

    # A flipped byte in the manifest: dcp's DataLossError on every rank, through torch's exception.
    dist_cp.save(sd, storage_writer=StorageWriter(root), planner=SavePlanner())
    dist.barrier()
    if rank == 0:
        damage.flip_manifest_byte(root)
    dist.barrier()
    with pytest.raises(CheckpointException) as e:
        dist_cp.load(dict(sd), storage_reader=StorageReader(root), planner=LoadPlanner())
    assert isinstance(_failure(e.value, rank), dcp.DataLossError), str(e.value)
    out.append("ok")
    with open(os.path.join(tmp, f"bad{rank}"), "w") as f:
        f.write(",".join(out))
    _done()


def test_bad_input_is_a_clear_error_on_every_rank(tmp_path):
    _spawn(_bad_input_worker, 2, str(tmp_path), str(tmp_path / "store"), str(tmp_path / "plain"))
    assert [(tmp_path / f"bad{r}").read_text() for r in range(2)] == ["ok", "ok"]


def test_unknown_options_and_missing_path_are_refused():
    with pytest.raises(TypeError, match="chunk_size"):
        StorageWriter("/x", chunk_size=1)
    with pytest.raises(TypeError, match="strict"):
        StorageReader("/x", strict=1)
    assert StorageReader.validate_checkpoint_id("/nonexistent/dir") is False
    assert StorageWriter.validate_checkpoint_id("/nonexistent/dir") is True


def test_one_process_reader_follows_the_latest_step(tmp_path):
    """Without a process group (DCP's no_dist); a reader reused for a later load sees the newer step."""
    root = str(tmp_path / "store")
    reader = StorageReader(root)
    for step, value in ((0, 1.0), (1, 2.0)):
        dist_cp.save({"w": torch.full((3, 2), value), "n": step}, storage_writer=StorageWriter(root),
                     planner=SavePlanner())
        sd = {"w": torch.zeros(3, 2), "n": -1}
        dist_cp.load(sd, storage_reader=reader, planner=LoadPlanner())
        assert torch.equal(sd["w"], torch.full((3, 2), value)) and sd["n"] == step


class _Rotary(torch.nn.Module):
    """A torchtitan-like model: its rotary table `freqs_cis` is a persistent complex64 buffer."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.tok = torch.nn.Embedding(16, 8)
        angles = torch.outer(torch.arange(6, dtype=torch.float32), torch.rand(4))
        self.register_buffer("freqs_cis", torch.polar(torch.ones_like(angles), angles), persistent=True)


@pytest.mark.parametrize("planners", ["dcp", "default"])
def test_complex_buffers_round_trip(tmp_path, planners):
    """torchtitan's Llama keeps freqs_cis (complex64) in its state dict: dcp's storage stores it, with
    dcp's planners and with DCP's defaults, and DCP's metadata says complex64."""
    root = str(tmp_path / "store")
    src = _Rotary(seed=1)
    save_planner, load_planner = (SavePlanner(), LoadPlanner()) if planners == "dcp" else (None, None)
    dist_cp.save({"model": src.state_dict()}, storage_writer=StorageWriter(root), planner=save_planner)
    dst = _Rotary(seed=2)
    assert not torch.equal(dst.freqs_cis, src.freqs_cis)
    sd = {"model": dst.state_dict()}
    dist_cp.load(sd, storage_reader=StorageReader(root), planner=load_planner)
    dst.load_state_dict(sd["model"])
    assert dst.freqs_cis.dtype == torch.complex64 and torch.equal(dst.freqs_cis, src.freqs_cis)
    assert torch.equal(dst.tok.weight, src.tok.weight)
    meta = StorageReader(root).read_metadata()
    assert meta.state_dict_metadata["model.freqs_cis"].properties.dtype == torch.complex64
    # A lazily conjugated destination gets the values, as FileSystemReader's copy_ gives them.
    conj = {"model.freqs_cis": torch.zeros(6, 4, dtype=torch.complex64).conj()}
    dist_cp.load(conj, storage_reader=StorageReader(root), planner=load_planner)
    assert conj["model.freqs_cis"].is_conj() and torch.equal(conj["model.freqs_cis"], src.freqs_cis)


class _TrainState:
    """torchtitan's TrainState (a DCP Stateful): its loss history as torch.save bytes in io.BytesIO."""

    def __init__(self, step, losses):
        self.step, self.losses = step, losses

    def state_dict(self):
        import io
        buf = io.BytesIO()
        torch.save(self.losses, buf)  # left at its end, as torchtitan leaves it
        return {"step": torch.tensor(self.step, dtype=torch.int32), "losses": buf}

    def load_state_dict(self, sd):
        self.step = int(sd["step"])
        sd["losses"].seek(0)
        self.losses = torch.load(sd["losses"], weights_only=False)


def test_bytes_io_values_are_stored_as_their_bytes_without_pickle(tmp_path):
    """A BytesIO is plain bytes to dcp's planners: saved without allow_pickle, loaded (as a BytesIO at
    position 0) with unpickling patched to raise; the Stateful then reads its own bytes."""
    import io
    root = str(tmp_path / "store")
    dist_cp.save({"train_state": _TrainState(42, [2.5, 1.25])}, storage_writer=StorageWriter(root),
                 planner=SavePlanner())
    state = _TrainState(0, [])
    loaded = {}

    def refuse(*a, **k):
        raise AssertionError("dcp's load unpickled something")
    keep = state.load_state_dict
    state.load_state_dict = lambda sd: loaded.update(sd)  # look at what DCP hands the Stateful
    saved = pickle.load, pickle.loads, torch.load
    pickle.load = pickle.loads = torch.load = refuse
    try:
        dist_cp.load({"train_state": state}, storage_reader=StorageReader(root), planner=LoadPlanner())
    finally:
        pickle.load, pickle.loads, torch.load = saved
    assert type(loaded["losses"]) is io.BytesIO and loaded["losses"].tell() == 0
    keep(loaded)
    assert state.step == 42 and state.losses == [2.5, 1.25]
    # A dict that uses the marker's key as its own is refused, naming it; a BytesIO subclass may hold more than
    # its bytes: it is not plain.
    from dcp._plain import from_plain, to_plain
    with pytest.raises(TypeError, match="'x.0': a dict key '__dcp_bytes_io__' is reserved by dcp"):
        to_plain([{"__dcp_bytes_io__": b""}], "x")

    class Sub(io.BytesIO):
        pass
    with pytest.raises(TypeError, match="'y' holds a .*Sub, which only pickle can store"):
        to_plain(Sub(b"a"), "y")
    assert from_plain(to_plain([io.BytesIO(b"ab")], "z"))[0].getvalue() == b"ab"


def test_ints_beyond_64_bits_round_trip_as_plain_values(tmp_path):
    """NumPy's PCG64 generator state holds 128-bit ints: stored without pickle, back as the same ints."""
    import numpy as np
    from dcp.errors import DataLossError
    from dcp._plain import from_plain, to_plain
    root = str(tmp_path / "store")
    rng = np.random.default_rng(1234)
    rng.random(3)
    state = rng.bit_generator.state
    assert state["state"]["state"] >= 1 << 64
    extremes = [(1 << 63) - 1, -(1 << 63), 1 << 63, -(1 << 63) - 1, -(10 ** 40), True]
    dist_cp.save({"data": {"rng": state, "extremes": extremes}}, storage_writer=StorageWriter(root),
                 planner=SavePlanner())
    # The destination has the saved structure (DCP flattens dicts into fqns), with other values.
    got = {"data": {"rng": np.random.default_rng(99).bit_generator.state, "extremes": [0]}}
    dist_cp.load(got, storage_reader=StorageReader(root), planner=LoadPlanner())
    assert got["data"]["rng"] == state and got["data"]["extremes"] == extremes
    assert [type(v) for v in got["data"]["extremes"]] == [int] * 5 + [bool]
    resumed = np.random.default_rng()
    resumed.bit_generator.state = got["data"]["rng"]
    assert resumed.random() == rng.random()
    # Only the big ones are marked; a damaged marker is data loss, not an int of whatever it holds.
    assert to_plain([1 << 63, 5], "x") == [{"__dcp_int__": str(1 << 63)}, 5]
    for bad in ("", "-", "12a", "1" * 5000, "٣"):
        with pytest.raises(DataLossError, match="a stored big int is not decimal digits"):
            from_plain({"__dcp_int__": bad})
    # Any marker holding what to_plain never writes is damaged, not a dict nor a guess.
    for bad in ({"__dcp_tuple__": 5}, {"__dcp_tuple__": "ab"}, {"__dcp_bytes_io__": "x"}, {"__dcp_int__": 5},
                {"__dcp_int__": "5", "x": 1}):
        with pytest.raises(DataLossError, match="value is malformed"):
            from_plain(bad)
    # More digits than Python converts: refused by name at save.
    import sys
    with pytest.raises(TypeError, match="'big' holds an int of more than 4300 digits"):
        assert sys.get_int_max_str_digits() == 4300
        to_plain(10 ** 5000, "big")


def test_numpy_scalars_and_torch_dtypes_round_trip_as_plain_values(tmp_path):
    """A metric from np.mean (np.float64) and a configured dtype come back as themselves, without pickle."""
    import numpy as np
    from dcp.errors import DataLossError
    from dcp._plain import from_plain
    root = str(tmp_path / "store")
    values = [np.float64(0.25), np.float32(1.5), np.int64(-3), np.uint8(7), np.bool_(True), np.complex64(1 - 2j),
              torch.bfloat16, torch.float8_e4m3fn, torch.int64]
    dist_cp.save({"cfg": {"v": values}}, storage_writer=StorageWriter(root), planner=SavePlanner())
    got = {"cfg": {"v": []}}
    dist_cp.load(got, storage_reader=StorageReader(root), planner=LoadPlanner())
    assert [type(v) for v in got["cfg"]["v"]] == [type(v) for v in values]
    assert got["cfg"]["v"] == values
    # A NumPy str / bytes scalar is a str / bytes; a datetime has no dcp dtype: refused by name. A stored
    # dtype name is only ever one of torch's dtypes.
    dist_cp.save({"x": [np.str_("a"), np.bytes_(b"b")]}, storage_writer=StorageWriter(root), planner=SavePlanner())
    got = {"x": []}
    dist_cp.load(got, storage_reader=StorageReader(root), planner=LoadPlanner())
    assert got["x"] == ["a", b"b"]
    refused = "common state 'x': dtype .* is not supported"
    with pytest.raises(CheckpointException, match=refused):
        dist_cp.save({"x": np.datetime64("2026-12-07")}, storage_writer=StorageWriter(root), planner=SavePlanner())
    for bad in ("nn", "_C", "os", "float32 ", "Tensor"):
        with pytest.raises(DataLossError, match="is not one of this torch's dtypes"):
            from_plain({"__dcp_torch_dtype__": bad})
    with pytest.raises(DataLossError, match="value is malformed"):
        from_plain({"__dcp_np_scalar__": np.zeros(2)})


def _latest_step_dir(folder):
    """torchtitan's resume: the largest step-<n> directory that has a .metadata file."""
    import re
    steps = [int(m.group(1)) for f in os.listdir(folder) if (m := re.search(r"step-(\d+)", f))
             and os.path.isfile(os.path.join(folder, f, ".metadata"))]
    return max(steps) if steps else -1


def test_step_directories_share_one_store_and_follow_their_removal(tmp_path):
    """torchtitan's layout: checkpoint_id=<folder>/step-<n>. Consecutive checkpoints are steps of one
    store next to them (unchanged chunks referenced), the directories are found as torchtitan finds
    them and load their own step; removing one (keep_latest_k) releases its step at the next save,
    while a step saved into the store path itself stays."""
    import shutil
    folder = tmp_path / "checkpoint"
    store = str(folder / "dcp_store")
    frozen, w = torch.arange(64, dtype=torch.float32).reshape(8, 8), torch.zeros(4, 4)
    writer = StorageWriter()  # as torchtitan would pass it: the path comes as checkpoint_id
    for n in (10, 20, 30):
        w.fill_(n)
        dist_cp.save({"frozen": frozen, "w": w, "n": n}, checkpoint_id=str(folder / f"step-{n}"),
                     storage_writer=writer, planner=SavePlanner())
        assert writer.last_step == n and writer.checkpoint_id == str(folder / f"step-{n}")
        if n > 10:  # the frozen tensor is referenced, not rewritten: only w's chunk is written
            r = writer.last_report
            assert r.chunks_written == 1 and r.raw_bytes_written < frozen.nbytes <= r.raw_bytes_referenced, r
    assert dcp.Store.open(store, "self", read_only=True).steps() == [10, 20, 30]
    assert sorted(os.listdir(folder)) == ["dcp_store", "step-10", "step-20", "step-30"]
    assert sorted(os.listdir(folder / "step-20")) == [".metadata", "dcp.json"]
    assert _latest_step_dir(folder) == 30
    with pytest.raises(pickle.UnpicklingError):  # DCP's FileSystemReader refuses the marker, unpickling nothing
        pickle.loads((folder / "step-20" / ".metadata").read_bytes())

    sd = {"frozen": torch.zeros(8, 8), "w": torch.zeros(4, 4), "n": -1}
    dist_cp.load(sd, checkpoint_id=str(folder / "step-20"), storage_reader=StorageReader(), planner=LoadPlanner())
    assert torch.equal(sd["frozen"], frozen) and torch.equal(sd["w"], torch.full((4, 4), 20.0)) and sd["n"] == 20
    assert StorageReader.validate_checkpoint_id(str(folder / "step-20"))

    # A step saved into the store itself is the user's: never released by directories.
    direct = StorageWriter(store, step=25)
    dist_cp.save({"w": w}, storage_writer=direct, planner=SavePlanner())
    shutil.rmtree(folder / "step-10")  # torchtitan's keep_latest_k
    shutil.copytree(folder / "step-20", folder / "kept-20")  # another name pointing at step 20 keeps it
    shutil.rmtree(folder / "step-20")
    w.fill_(40)
    dist_cp.save({"frozen": frozen, "w": w, "n": 40}, checkpoint_id=str(folder / "step-40"),
                 storage_writer=writer, planner=SavePlanner())
    assert writer.last_deleted_steps == [10]
    assert dcp.Store.open(store, "self", read_only=True).steps() == [20, 25, 30, 40]
    shutil.rmtree(folder / "kept-20")
    dist_cp.save({"frozen": frozen, "w": w, "n": 50}, checkpoint_id=str(folder / "step-50"),
                 storage_writer=writer, planner=SavePlanner())
    assert writer.last_deleted_steps == [20]
    assert dcp.Store.open(store, "self", read_only=True).steps() == [25, 30, 40, 50]
    sd = {"frozen": torch.zeros(8, 8), "w": torch.zeros(4, 4), "n": -1}
    dist_cp.load(sd, checkpoint_id=str(folder / "step-30"), storage_reader=StorageReader(), planner=LoadPlanner())
    assert torch.equal(sd["frozen"], frozen) and torch.equal(sd["w"], torch.full((4, 4), 30.0)) and sd["n"] == 30


def test_step_directories_roll_back(tmp_path):
    """A resumed run saves again steps whose directories it removed (torchtitan resuming from an earlier
    step): the released step is replaced, as is a step saved again into its own directory; a step that
    another directory still points to is not written over."""
    import shutil
    folder = tmp_path / "checkpoint"
    writer = StorageWriter()

    def save(n, value):
        dist_cp.save({"w": torch.full((2,), float(value))}, checkpoint_id=str(folder / f"step-{n}"),
                     storage_writer=writer, planner=SavePlanner())

    def load(n):
        sd = {"w": torch.zeros(2)}
        dist_cp.load(sd, checkpoint_id=str(folder / f"step-{n}"), storage_reader=StorageReader(), planner=LoadPlanner())
        return sd["w"][0].item()
    for n in (100, 200, 300):
        save(n, n)
    shutil.rmtree(folder / "step-300")  # the resumed run starts from 200
    save(300, 3)
    assert load(300) == 3 and load(200) == 200
    save(300, 4)  # into its own directory again
    assert load(300) == 4
    shutil.copytree(folder / "step-300", folder / "kept-300")
    shutil.rmtree(folder / "step-300")
    with pytest.raises(CheckpointException, match="already exists"):
        save(300, 5)
    assert dcp.Store.open(str(folder / "dcp_store"), "self", read_only=True).steps() == [100, 200, 300]
    assert load(200) == 200
    sd = {"w": torch.zeros(2)}
    dist_cp.load(sd, checkpoint_id=str(folder / "kept-300"), storage_reader=StorageReader(), planner=LoadPlanner())
    assert sd["w"][0].item() == 4
    # The integration's own objects are no keys of the state, nor missing ones of a strict load.
    store = str(folder / "dcp_store")
    assert set(dcp.load_sharded_metadata(store)) == {"w"}
    request = {"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2))}
    assert dcp.load(request, store, step=200, strict="raise_all")["w"][0].item() == 200
    assert dcp.load(request, store, step=200, strict="return_all")[1:] == (set(), set())


def test_step_directory_bad_input(tmp_path):
    """A damaged pointer, a step of another number, a directory whose step was deleted, a plain DCP
    checkpoint in a step directory's place: each a clear error naming it, nothing written over."""
    from torch.distributed.checkpoint import FileSystemWriter
    folder = tmp_path / "checkpoint"
    dist_cp.save({"w": torch.ones(2)}, checkpoint_id=str(folder / "step-1"), storage_writer=StorageWriter(),
                 planner=SavePlanner())

    def load(path, **kw):
        dist_cp.load({"w": torch.zeros(2)}, checkpoint_id=str(path), storage_reader=StorageReader(**kw),
                     planner=LoadPlanner())
    with pytest.raises(CheckpointException, match="holds step 1 .* not step 7"):
        load(folder / "step-1", step=7)
    (folder / "step-2").mkdir()
    (folder / "step-2" / "dcp.json").write_text('{"store": "../dcp_store", "step": 2}')
    with pytest.raises(CheckpointException, match="step 2"):
        load(folder / "step-2")
    (folder / "step-2" / "dcp.json").write_text('{"store": 5}')
    with pytest.raises(CheckpointException, match="dcp.json' is damaged"):
        load(folder / "step-2")
    # A damaged pointer next to the store: what it points to is unknown, so the next save deletes nothing.
    shutil_dir = folder / "step-1"
    import shutil
    shutil.rmtree(shutil_dir)
    writer = StorageWriter()
    with pytest.warns(UserWarning, match="dcp.json' is damaged"):
        dist_cp.save({"w": torch.ones(2)}, checkpoint_id=str(folder / "step-3"), storage_writer=writer,
                     planner=SavePlanner())
    assert writer.last_deleted_steps == []
    assert dcp.Store.open(str(folder / "dcp_store"), "self", read_only=True).steps() == [1, 3]
    # So does a pointer that cannot be read (here: a directory in its place; on NFS, a stale handle).
    (folder / "step-2" / "dcp.json").unlink()
    (folder / "step-2" / "dcp.json").mkdir()
    with pytest.warns(UserWarning, match="IsADirectoryError"):
        dist_cp.save({"w": torch.ones(2)}, checkpoint_id=str(folder / "step-5"), storage_writer=writer,
                     planner=SavePlanner())
    assert dcp.Store.open(str(folder / "dcp_store"), "self", read_only=True).steps() == [1, 3, 5]
    # FileSystemWriter's checkpoint in a step directory's place is not written over.
    dist_cp.save({"w": torch.ones(2)}, storage_writer=FileSystemWriter(str(folder / "step-4")))
    before = sorted(os.listdir(folder / "step-4"))
    with pytest.raises(CheckpointException, match="PyTorch distributed checkpoint"):
        dist_cp.save({"w": torch.ones(2)}, checkpoint_id=str(folder / "step-4"), storage_writer=StorageWriter(),
                     planner=SavePlanner())
    assert sorted(os.listdir(folder / "step-4")) == before
    assert dcp.Store.open(str(folder / "dcp_store"), "self", read_only=True).steps() == [1, 3, 5]


def _step_dir_worker(rank, world, tmp, folder):
    mesh = _init(rank, world, tmp)
    from torch.distributed.tensor import Shard, distribute_tensor
    writer = StorageWriter()
    for n in (1, 2, 3):
        w = distribute_tensor(torch.full((4, 2), float(n)), mesh, [Shard(0)])
        dist_cp.save({"w": w}, checkpoint_id=os.path.join(folder, f"step-{n}"), storage_writer=writer,
                     planner=SavePlanner())
        if n == 2 and rank == 0:
            import shutil
            shutil.rmtree(os.path.join(folder, "step-1"))
        dist.barrier()
    assert writer.last_deleted_steps == [1], writer.last_deleted_steps  # on every rank
    w = distribute_tensor(torch.zeros(4, 2), mesh, [Shard(0)])
    dist_cp.load({"w": w}, checkpoint_id=os.path.join(folder, "step-2"), storage_reader=StorageReader(),
                 planner=LoadPlanner())
    assert torch.equal(w.full_tensor(), torch.full((4, 2), 2.0))
    with open(os.path.join(tmp, f"steps{rank}"), "w") as f:
        f.write(",".join(map(str, dcp.Store.open(os.path.join(folder, "dcp_store"), "self", read_only=True).steps())))
    _done()


def test_step_directories_under_a_process_group(tmp_path):
    """Rank 0 decides which steps go; every rank deletes them in the same collectives."""
    _spawn(_step_dir_worker, 2, str(tmp_path), str(tmp_path / "checkpoint"))
    assert [(tmp_path / f"steps{r}").read_text() for r in range(2)] == ["2,3", "2,3"]


class _Optimizers:
    """What torchtitan's OptimizersContainer is to DCP for one FSDP2 model part: a Stateful over
    the flattened optimizer state dict."""

    def __init__(self, model, opt):
        self.model, self.opt = model, opt

    def _options(self):
        from torch.distributed.checkpoint.state_dict import StateDictOptions
        return StateDictOptions(flatten_optimizer_state_dict=True)

    def state_dict(self):
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
        return get_optimizer_state_dict(self.model, self.opt, options=self._options())

    def load_state_dict(self, sd):
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
        set_optimizer_state_dict(self.model, self.opt, sd, options=self._options())


def _torchtitan_worker(rank, world, tmp, base, async_mode):
    """torchtitan's own CheckpointManager, with the change a torchtitan user makes: its dcp_save /
    dcp_load pass dcp's writer, reader and planners (done here by patching the module's `dcp`)."""
    import types
    from torchtitan.components.checkpointer import dcp as titan
    mesh = _init(rank, world, tmp)
    shim = types.SimpleNamespace(**vars(dist_cp))
    shim.save = lambda sd, storage_writer=None, **kw: dist_cp.save(
        sd, storage_writer=storage_writer or StorageWriter(), planner=SavePlanner(), **kw)
    shim.async_save = lambda sd, storage_writer=None, process_group=None, **kw: dist_cp.async_save(
        sd, storage_writer=storage_writer or StorageWriter(group=process_group), planner=SavePlanner(),
        process_group=process_group, **kw)
    shim.load = lambda sd, storage_reader=None, **kw: dist_cp.load(
        sd, storage_reader=storage_reader or StorageReader(), planner=LoadPlanner(), **kw)
    titan.dcp = shim

    def manager(m, opt):
        config = titan.CheckpointManager.Config(enable=True, folder="checkpoint", interval=10, keep_latest_k=2,
                                                last_save_model_only=False, async_mode=async_mode)
        return titan.CheckpointManager(config, dataloader=None, model_parts=[m], optimizers=_Optimizers(m, opt),
                                       lr_schedulers=None, states={"train_state": _TrainState(0, [])},
                                       sd_adapter=None, base_folder=base)
    m = _model(mesh)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    checkpoints = manager(m, opt)
    g = torch.Generator().manual_seed(3)
    for step in range(1, 41):
        opt.zero_grad()
        m(torch.randn(4, SIZES[0], generator=g)).pow(2).sum().backward()
        opt.step()
        checkpoints.states["train_state"].step = step
        checkpoints.save(step)
    checkpoints.maybe_wait_for_saving()
    checkpoints._close()  # joins the purge thread
    ref = _full({"model": m.state_dict(), "optim": _Optimizers(m, opt).state_dict()})
    dist.barrier()

    m2 = _model(mesh, seed=7)
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.5)
    _train(m2, opt2, 1, seed=11)
    resumed = manager(m2, opt2)
    assert resumed._find_load_step() == 40  # torchtitan finds the latest step directory by its .metadata

    def refuse(*a, **k):
        raise AssertionError("a load with dcp's storage and planners unpickled something")
    saved = pickle.load, pickle.loads
    pickle.load = pickle.loads = refuse
    try:
        assert resumed.load()
    finally:
        pickle.load, pickle.loads = saved
    got = _full({"model": m2.state_dict(), "optim": _Optimizers(m2, opt2).state_dict()})
    for k, v in ref.items():
        assert torch.equal(got[k], v) if isinstance(v, torch.Tensor) else got[k] == v, k
    assert resumed.states["train_state"].step == 40
    resumed._close()  # joins the purge thread: the directories are what torchtitan keeps
    dist.barrier()
    # The next save through a step directory releases the steps of every directory purged by now.
    folder = os.path.join(base, "checkpoint")
    dist_cp.save({"x": torch.ones(2)}, checkpoint_id=os.path.join(folder, "step-1000"),
                 storage_writer=StorageWriter(), planner=SavePlanner())
    if rank == 0:
        folder = os.path.join(base, "checkpoint")
        with dcp.Store.open(os.path.join(folder, "dcp_store"), "self", read_only=True) as s:
            steps = s.steps()
        with open(os.path.join(tmp, "titan"), "w") as f:
            f.write(repr((sorted(os.listdir(folder)), steps)))
    _done()


@pytest.mark.parametrize("async_mode", ["disabled", "async"])
def test_torchtitan_checkpoint_manager_over_dcp_storage(tmp_path, async_mode):
    """torchtitan's CheckpointManager (keep_latest_k=2) saves an FSDP2 model, AdamW and its train
    state every 10 steps into step directories over one dcp store, then resumes in a fresh one,
    bit-exact, never unpickling. Its purge removes old directories (in a thread); their steps go at the
    next save through a step directory."""
    import ast
    pytest.importorskip("torchtitan.components.checkpointer.dcp")
    _spawn(_torchtitan_worker, 2, str(tmp_path), str(tmp_path / "run"), async_mode)
    names, steps = ast.literal_eval((tmp_path / "titan").read_text())
    kept = sorted(int(n[len("step-"):]) for n in names if n.startswith("step-"))
    # torchtitan keeps 2 directories (3 when async: it purges while the last save is in flight).
    assert names[0] == "dcp_store" and kept[-3:-1] == [30, 40] and kept[-1] == 1000 and len(kept) <= 4, names
    assert steps == kept, (kept, steps)
