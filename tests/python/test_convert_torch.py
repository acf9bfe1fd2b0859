"""dcp.convert's PyTorch converters (issue 14): torch distributed checkpoints, Megatron torch_dist and
per-rank torch.save files into a store and back out. Runs under Debian's torch 1.13 and the torch 2.x
venv; what one torch lacks is skipped with the reason."""

import io
import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import dcp  # noqa: E402
from dcp import _convert_torch as ct  # noqa: E402
from dcp.convert import main as convert_main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OLD = torch.__version__.startswith("1.")
DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.int64, torch.bool)


def _checkpoint():
    """(save, load, FileSystemWriter, FileSystemReader) of the running torch."""
    if OLD:
        ct._checkpoint_api()  # imports torch.distributed._shard.checkpoint on Python 3.11
        from torch.distributed._shard.checkpoint import (FileSystemReader, FileSystemWriter, load_state_dict,
                                                         save_state_dict)
        return save_state_dict, load_state_dict, FileSystemWriter, FileSystemReader
    from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter, load, save
    return save, load, FileSystemWriter, FileSystemReader


@pytest.fixture
def torch_allow_list_only():
    """torch's own weights-only allow-list for the test, without the types the process added
    (torch.serialization.add_safe_globals). The converters honour those: importing megatron.core
    adds 25 (argparse.Namespace, NumPy's RNG state among them), and a pytest session that collected
    the Megatron tests would otherwise admit without --trust-pickle what these tests need refused."""
    ser = torch.serialization
    if not hasattr(ser, "get_safe_globals"):
        yield
        return
    added = ser.get_safe_globals()
    ser.clear_safe_globals()
    try:
        yield
    finally:
        ser.add_safe_globals(added)


def _values(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype == torch.int64:
        return torch.randint(-2**62, 2**62, shape, generator=g, dtype=torch.int64)
    return (torch.randn(shape, generator=g) * 100).to(dtype)


def _bits_equal(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == torch.bool:
        return torch.equal(a, b)
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def _model():
    return {f"layer.{i}.{str(d).split('.')[-1]}": _values(d, (6, 4) if i % 2 else (10,), i)
            for i, d in enumerate(DTYPES)}


def _save_torch_dcp(path, state):
    save, _, writer, _ = _checkpoint()
    save(state, storage_writer=writer(str(path)), no_dist=True)


def _load_torch_dcp(path, state):
    _, load, _, reader = _checkpoint()
    load(state, storage_reader=reader(str(path)), no_dist=True)
    return state


def _store_tensors(root, step=None):
    with dcp.Store.open(root, "self", read_only=True) as store:
        step = store.latest_step() if step is None else step
        meta = store.metadata(step)
        return {t["key"]: store.read(step, t["key"]) for t in meta["tensors"]}, meta


def _run_job(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_dcp_job.py"), *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    return r.stdout


# -- PyTorch distributed checkpoints --------------------------------------------------------------------------

def test_four_rank_torch_checkpoint_imported_loaded_at_two_ranks_and_exported(tmp_path, monkeypatch):
    """4 gloo ranks of the running torch (1.13: ShardedTensor, 2.x: DTensor) save; the import loads at 2 ranks
    with dcp.load, and its export loads at 2 ranks with torch's own loader, every element checked. With a
    1-byte part budget each part is one tensor: its 4 chunks together, as dcp needs."""
    _run_job("save", tmp_path / "torch")
    parts = []
    put_part = dcp.Store.put_part
    monkeypatch.setattr(dcp.Store, "put_part", lambda self, sd: (parts.append(sd), put_part(self, sd))[1])
    report = ct.from_torch_dcp(tmp_path / "store", tmp_path / "torch", part_bytes=1)
    assert report == {"step": 0, "tensors": 3, "objects": 1}
    tensor_parts = [sorted(v.key for v in p.values() if isinstance(v, dcp.ShardedTensor)) for p in parts]
    assert sorted(tensor_parts) == sorted([[k] * 4 for k in ("w.bf16", "w.f32", "w.i64")] + [[]]), tensor_parts
    ct.to_torch_dcp(tmp_path / "store", tmp_path / "out")
    out = _run_job("load", tmp_path / "store", tmp_path / "out")
    assert "torch dcp job ok: 2 ranks" in out


def test_torch_dcp_round_trip_is_bit_exact(tmp_path):
    model = _model()
    state = dict(model, step={"n": 7})
    _save_torch_dcp(tmp_path / "in", state)
    ct.from_torch_dcp(tmp_path / "store", tmp_path / "in")
    tensors, meta = _store_tensors(tmp_path / "store")
    assert set(tensors) == set(model)
    for k, v in model.items():
        assert _bits_equal(tensors[k], v), k
    ct.to_torch_dcp(tmp_path / "store", tmp_path / "out")
    back = {k: torch.zeros_like(v) for k, v in model.items()}
    back["step"] = {"n": 0}
    _load_torch_dcp(tmp_path / "out", back)
    for k, v in model.items():
        assert _bits_equal(back[k], v), k
    assert back["step"] == {"n": 7}


def test_steps_follow_the_latest_and_an_existing_one_is_refused(tmp_path):
    _save_torch_dcp(tmp_path / "in", _model())
    assert ct.from_torch_dcp(tmp_path / "store", tmp_path / "in")["step"] == 0
    assert ct.from_torch_dcp(tmp_path / "store", tmp_path / "in")["step"] == 1
    with pytest.raises(dcp.DcpError, match="1"):
        ct.from_torch_dcp(tmp_path / "store", tmp_path / "in", step=1)
    assert ct.from_torch_dcp(tmp_path / "store", tmp_path / "in", step=1, overwrite=True)["step"] == 1
    with dcp.Store.open(tmp_path / "store", "self", read_only=True) as store:
        assert store.steps() == [0, 1]
    with pytest.raises(dcp.AlreadyExistsError):
        ct.to_torch_dcp(tmp_path / "store", tmp_path / "in")  # never over a checkpoint


def _import_fails(tmp_path, error, *fragments):
    with pytest.raises(error) as e:
        ct.from_torch_dcp(tmp_path / "store", tmp_path / "in")
    for f in fragments:
        assert f in str(e.value), str(e.value)
    if os.path.isdir(tmp_path / "store"):
        with dcp.Store.open(tmp_path / "store", "self", read_only=True) as store:
            assert store.latest_step() is None  # nothing committed


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_metadata_pickle_of_another_class_is_refused_and_nothing_runs(tmp_path):
    os.makedirs(tmp_path / "in")
    marker = tmp_path / "pwned"
    with open(tmp_path / "in" / ".metadata", "wb") as f:
        pickle.dump(_Evil(marker), f)
    _import_fails(tmp_path, dcp.DataLossError, ".metadata", "refusing to unpickle", "system")
    assert not marker.exists()
    with open(tmp_path / "in" / ".metadata", "wb") as f:
        pickle.dump({"state_dict_metadata": {}}, f)
    _import_fails(tmp_path, dcp.DataLossError, "not a DCP Metadata")
    with open(tmp_path / "in" / ".metadata", "wb") as f:
        f.write(b"\x80\x04garbage")
    _import_fails(tmp_path, dcp.DataLossError, "not a DCP Metadata pickle")


def test_missing_file_and_item_past_the_end_are_named(tmp_path):
    model = {"a": _values(torch.float32, (64,), 1), "b": _values(torch.int64, (8,), 2)}
    _save_torch_dcp(tmp_path / "in", model)
    files = sorted(f for f in os.listdir(tmp_path / "in") if f.endswith(".distcp"))
    biggest = max(files, key=lambda f: os.path.getsize(tmp_path / "in" / f))
    with open(tmp_path / "in" / biggest, "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "in" / biggest) - 10)
    _import_fails(tmp_path, dcp.DataLossError, "past the end", biggest, "tensor '")
    for f in files:
        os.remove(tmp_path / "in" / f)
    _import_fails(tmp_path, dcp.NotFoundError, "is missing", ".distcp", "'a'")


# -- Megatron torch_dist --------------------------------------------------------------------------------------

def _megatron_torch_dist(path, tensors, objects, common):
    """What megatron-core 0.16.1's torch_dist save writes, without Megatron (its save needs CUDA): DCP files
    whose ShardedObjects are BYTE_IO items KEY/shard_OFFSET_SHAPE holding torch.save([data]) (MCoreSavePlanner
    writes the BytesIO as it is), common.pt (torch.save of the common state on rank 0) and metadata.json."""
    from torch.distributed.checkpoint import FileSystemWriter, save
    from torch.distributed.checkpoint.default_planner import DefaultSavePlanner

    class MCoreLikePlanner(DefaultSavePlanner):
        def transform_object(self, write_item, object):  # noqa: A002 - DCP's signature
            return object

    state = dict(tensors)
    for (key, offset, shape), data in objects.items():
        buf = io.BytesIO()
        torch.save([data], buf)
        state[f"{key}/shard_{'.'.join(map(str, offset))}_{'.'.join(map(str, shape))}"] = buf
    save(state, storage_writer=FileSystemWriter(str(path)), planner=MCoreLikePlanner(flatten_state_dict=False),
         no_dist=True)
    torch.save(common, os.path.join(path, "common.pt"))
    with open(os.path.join(path, "metadata.json"), "w") as f:
        f.write('{"sharded_backend": "torch_dist", "sharded_backend_version": 1, "common_backend": "torch", '
                '"common_backend_version": 1}')


needs_torch2 = pytest.mark.skipif(OLD, reason="Megatron-Core's torch_dist needs torch >= 2 (the venv)")


@needs_torch2
def test_megatron_torch_dist_imported_tensors_objects_and_common_state(tmp_path):
    model = _model()
    objects = {("optimizer.rng", (0,), (2,)): {"seed": 1}, ("optimizer.rng", (1,), (2,)): {"seed": 2}}
    common = {"iteration": 100, "checkpoint_version": 3.0, "lr": torch.tensor([0.5])}
    _megatron_torch_dist(tmp_path / "in", model, objects, common)
    report = ct.from_torch_dist(tmp_path / "store", tmp_path / "in")
    assert report == {"step": 0, "tensors": len(model), "objects": 2}
    tensors, _ = _store_tensors(tmp_path / "store")
    for k, v in model.items():
        assert _bits_equal(tensors[k], v), k
    loaded = dcp.load_common_state_dict(str(tmp_path / "store"))
    assert loaded["iteration"] == 100 and loaded["checkpoint_version"] == 3.0
    assert torch.equal(torch.as_tensor(loaded["lr"]), common["lr"])
    request = {f"o{i}": dcp.ShardedObject("optimizer.rng", None, (2,), (i,)) for i in range(2)}
    state = dcp.load(request, tmp_path / "store", group="self")
    # as dcp.integrations.megatron stores ShardedObject data: DcpLoadShardedStrategy gives the value back
    assert [state[f"o{i}"] for i in range(2)] == [{"megatron_dcp_value": {"seed": s}} for s in (1, 2)]


@needs_torch2
def test_common_pt_that_needs_unpickling_is_refused_without_trust_pickle(tmp_path, torch_allow_list_only):
    import argparse
    _megatron_torch_dist(tmp_path / "in", {"w": torch.ones(3)}, {}, {"args": argparse.Namespace(lr=1.0)})
    with pytest.raises(dcp.FailedPreconditionError) as e:
        ct.from_torch_dist(tmp_path / "store", tmp_path / "in")
    assert "common.pt" in str(e.value) and "--trust-pickle" in str(e.value)
    assert not os.path.exists(tmp_path / "store")
    assert convert_main(["from-torch-dist", str(tmp_path / "store"), str(tmp_path / "in")]) == 1


# -- torch.save per rank --------------------------------------------------------------------------------------

def _megatron_model():
    """A 4-layer model's global tensors, every dtype."""
    g = {"embedding.weight": _values(torch.bfloat16, (16, 4), 0), "final_norm.weight": _values(torch.float32, (4,), 1)}
    for i in range(4):
        g[f"layers.{i}.qkv.weight"] = _values(torch.float16, (12, 4), 10 + i)
        g[f"layers.{i}.proj.weight"] = _values(torch.float32, (4, 6), 20 + i)
        g[f"layers.{i}.mask"] = _values(torch.bool, (6,), 30 + i)
        g[f"layers.{i}.count"] = _values(torch.int64, (2,), 40 + i)
    return g


SPLITS = ["embedding.*=0", "*qkv.weight=0", "*proj.weight=1", "*mask=0"]


def test_torch_save_per_rank_round_trip_tp2_pp2_is_bit_exact(tmp_path):
    model = _megatron_model()
    layout = ct.Layout.tp_pp(2, 2, ct.parse_splits(SPLITS), {k: tuple(v.shape) for k, v in model.items()},
                             last_stage=["final_norm.*"])
    assert sorted(layout.files) == ["mp_rank_00_000.pt", "mp_rank_00_001.pt", "mp_rank_01_000.pt",
                                    "mp_rank_01_001.pt"]
    os.makedirs(tmp_path / "in")
    originals = {}
    for name, entries in layout.files.items():
        sd = {local: model[g][tuple(slice(o, o + s) for o, s in zip(off, shape))].clone()
              for local, (g, off, shape) in entries.items()}
        sd["iteration"] = 5
        torch.save(sd, tmp_path / "in" / name)
        originals[name] = sd
    assert "layers.1.qkv.weight" in originals["mp_rank_01_001.pt"]  # global layer 3, renumbered
    files = [str(tmp_path / "in" / n) for n in layout.files]
    args = ["from-torch-save", str(tmp_path / "store"), *files, "--tp", "2", "--pp", "2", "--last-stage",
            "final_norm.*"] + [a for s in SPLITS for a in ("--split", s)]
    assert convert_main(args) == 0
    tensors, _ = _store_tensors(tmp_path / "store")
    assert set(tensors) == set(model)
    for k, v in model.items():
        assert _bits_equal(tensors[k], v), k
    ct.to_torch_save(tmp_path / "store", tmp_path / "out", tp=2, pp=2, splits=SPLITS, last_stage=["final_norm.*"])
    for name, sd in originals.items():
        back = torch.load(tmp_path / "out" / name)
        assert set(back) == set(sd), name
        for k, v in sd.items():
            assert _bits_equal(back[k], v) if isinstance(v, torch.Tensor) else back[k] == v, (name, k)


def test_torch_save_with_offsets_json_and_another_layout(tmp_path):
    model = {"a": _values(torch.float32, (4, 6), 1), "b": _values(torch.int64, (5,), 2)}
    os.makedirs(tmp_path / "in")
    torch.save({"a": model["a"][:, :3].clone(), "b": model["b"]}, tmp_path / "in" / "r0.pt")
    torch.save({"a": model["a"][:, 3:].clone(), "b": model["b"]}, tmp_path / "in" / "r1.pt")
    spec = tmp_path / "layout.json"
    spec.write_text('{"global_shapes": {"a": [4, 6], "b": [5]}, '
                    '"files": {"r0.pt": {"a": [0, 0], "b": [0]}, "r1.pt": {"a": [0, 3], "b": [0]}}}')
    ct.from_torch_save(tmp_path / "store", [tmp_path / "in" / "r0.pt", tmp_path / "in" / "r1.pt"], offsets=spec)
    tensors, _ = _store_tensors(tmp_path / "store")
    assert _bits_equal(tensors["a"], model["a"]) and _bits_equal(tensors["b"], model["b"])
    out = tmp_path / "out.json"
    out.write_text('{"files": {"row0.pt": {"a": {"offset": [0, 0], "shape": [2, 6]}}, '
                   '"row1.pt": {"a": {"offset": [2, 0], "shape": [2, 6]}, "b": {"offset": [1], "shape": [4]}}}}')
    ct.to_torch_save(tmp_path / "store", tmp_path / "out", offsets=out)
    assert _bits_equal(torch.load(tmp_path / "out" / "row0.pt")["a"], model["a"][:2])
    assert _bits_equal(torch.load(tmp_path / "out" / "row1.pt")["b"], model["b"][1:])


def test_torch_save_that_needs_unpickling_is_refused(tmp_path, torch_allow_list_only):
    import argparse
    os.makedirs(tmp_path / "in")
    torch.save({"w": torch.ones(2), "args": argparse.Namespace(lr=1.0)}, tmp_path / "in" / "mp_rank_00.pt")
    with pytest.raises(dcp.FailedPreconditionError, match="mp_rank_00.pt.*--trust-pickle"):
        ct.from_torch_save(tmp_path / "store", [tmp_path / "in" / "mp_rank_00.pt"], tp=1)


# -- the command line -----------------------------------------------------------------------------------------

def test_cli_exit_codes(tmp_path, capsys):
    _save_torch_dcp(tmp_path / "in", {"a": torch.arange(4)})
    assert convert_main(["from-torch-dcp", str(tmp_path / "store"), str(tmp_path / "in")]) == 0
    assert convert_main(["to-torch-dcp", str(tmp_path / "store"), str(tmp_path / "out"), "--step", "0"]) == 0
    assert convert_main(["from-torch-dcp", str(tmp_path / "store2"), str(tmp_path / "nothing")]) == 1
    assert "no file" in capsys.readouterr().err
    assert convert_main(["from-torch-dcp", str(tmp_path / "store")]) == 2
    assert convert_main(["to-torch-save", str(tmp_path / "store"), str(tmp_path / "o")]) == 2
    assert convert_main(["from-torch-dcp", "--help"]) == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "dcp.convert", "to-torch-dcp", str(tmp_path / "nostore"),
                        str(tmp_path / "o2")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "to-torch-dcp" in r.stderr


@needs_torch2
def test_megatron_rng_state_and_args_load_with_trust_pickle_only(tmp_path, torch_allow_list_only):
    """Megatron's real common.pt holds `args` (an argparse.Namespace) and its rng_state ShardedObject NumPy's
    state: both need full unpickling; with --trust-pickle args is stored as a dict and the rng state as dcp
    plain values (tuples kept), read back by dcp.load as Megatron saved them."""
    import argparse
    import random

    import numpy as np
    rng = {"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
           "torch_rng_state": torch.get_rng_state()}
    _megatron_torch_dist(tmp_path / "in", {"w": torch.ones(3)}, {("rng_state", (0,), (1,)): [rng]},
                         {"args": argparse.Namespace(lr=1.0, layers=2), "iteration": 9})
    with pytest.raises(dcp.FailedPreconditionError, match="common.pt"):
        ct.from_torch_dist(tmp_path / "store", tmp_path / "in")
    assert convert_main(["from-torch-dist", str(tmp_path / "store"), str(tmp_path / "in"), "--trust-pickle"]) == 0
    assert dcp.load_common_state_dict(str(tmp_path / "store"))["args"] == {"lr": 1.0, "layers": 2}
    state = dcp.load({"o": dcp.ShardedObject("rng_state", None, (1,), (0,))}, tmp_path / "store", group="self")
    from dcp._plain import from_plain
    back = from_plain(state["o"]["megatron_dcp_value"])[0]
    assert back["random_rng_state"] == rng["random_rng_state"]
    assert back["np_rng_state"][0] == "MT19937" and np.array_equal(back["np_rng_state"][1], rng["np_rng_state"][1])
    assert torch.equal(torch.as_tensor(back["torch_rng_state"]), rng["torch_rng_state"])


@needs_torch2
def test_megatron_loads_the_torch_dist_import_through_dcps_strategy(tmp_path):
    """The import is what dcp's own Megatron strategy would have saved: Megatron's dist_checkpointing.load
    with DcpLoadShardedStrategy reads its tensors (in another layout: two row halves) and ShardedObjects."""
    mcp = pytest.importorskip("megatron.core.dist_checkpointing")
    from megatron.core.dist_checkpointing import ShardedObject, ShardedTensor
    from dcp.integrations.megatron import DcpLoadShardedStrategy
    import torch.distributed as dist
    w = _values(torch.bfloat16, (6, 4), 3)
    _megatron_torch_dist(tmp_path / "in", {"decoder.w": w}, {("rng", (0,), (1,)): {"seed": (1, 2)}}, {"iteration": 4})
    ct.from_torch_dist(tmp_path / "store", tmp_path / "in")
    it = tmp_path / "iter_0000004"
    os.makedirs(it)
    (it / "dcp.json").write_text('{"store": "../store", "step": 0}')
    (it / "metadata.json").write_text('{"sharded_backend": "dcp", "sharded_backend_version": 1, '
                                      '"common_backend": "torch", "common_backend_version": 1}')
    os.link(tmp_path / "in" / "common.pt", it / "common.pt")  # Megatron's common strategy reads its own file
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        request = {f"w{i}": ShardedTensor.from_rank_offsets("decoder.w", torch.zeros(3, 4, dtype=torch.bfloat16),
                                                            (0, i, 2)) for i in range(2)}
        request["rng"] = ShardedObject("rng", None, (1,), (0,), replica_id=0)
        state = mcp.load(request, str(it), sharded_strategy=DcpLoadShardedStrategy())
    finally:
        dist.destroy_process_group()
    assert _bits_equal(torch.cat([state["w0"], state["w1"]]), w)
    assert state["rng"] == {"seed": (1, 2)} and state["iteration"] == 4


_PEAK = """
import sys
from dcp import _convert_torch as ct
ct._checkpoint_api()
def hwm():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
base = hwm()
if sys.argv[1] == "in":
    ct.from_torch_dcp(sys.argv[3], sys.argv[2], part_bytes=1)
else:
    ct.to_torch_dcp(sys.argv[2], sys.argv[3])
print(hwm() - base)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from /proc (Linux)")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="under AddressSanitizer freed memory stays in its quarantine: the peak is not the program's")
def test_import_and_export_hold_about_one_tensor_not_the_model(tmp_path):
    """16 tensors of 8 MiB (128 MiB): the peak resident size of an import (one tensor per part) and of an
    export grows by a few tensors, far less than the model."""
    model = {f"t{i}": torch.full((1024, 2048), float(i)) for i in range(16)}
    _save_torch_dcp(tmp_path / "in", model)
    del model
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for how, src, dst in (("in", tmp_path / "in", tmp_path / "store"), ("out", tmp_path / "store", tmp_path / "out")):
        r = subprocess.run([sys.executable, "-c", _PEAK, how, str(src), str(dst)], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        grown = int(r.stdout.split()[-1])
        assert grown < 64 << 20, f"{how}: the peak grew by {grown >> 20} MiB for a 128 MiB model of 8 MiB tensors"
    tensors, _ = _store_tensors(tmp_path / "store")
    assert all(torch.equal(tensors[f"t{i}"], torch.full((1024, 2048), float(i))) for i in (0, 15))
