"""dcp.convert: models of other formats into a store and back out (issue 14)."""

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import dcp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_model  # noqa: E402


def _imported(tmp_path):
    index = hf_model.write_sharded(str(tmp_path))
    rules = hf_model.write_rules(str(tmp_path / "rules.json"))
    report = dcp.import_safetensors(tmp_path / "store", index, rules=rules, chunk_bytes=64)
    return report


def test_sharded_model_imported_with_rules_and_loaded_whole(tmp_path):
    report = _imported(tmp_path)
    assert report["files"] == 3 and report["step"] == 0
    full = hf_model.megatron_tensors()
    assert report["tensors"] == len(full)
    with dcp.Store.open(tmp_path / "store", "self", read_only=True) as store:
        meta = store.metadata(0)
        assert sorted(t["key"] for t in meta["tensors"]) == sorted(full)
    request = {n: dcp.ShardedTensor(n, np.zeros_like(a), a.dtype, a.shape, a.shape, (0,) * a.ndim)
               for n, a in full.items()}
    state = dcp.load(request, tmp_path / "store", group="self")
    for n, a in full.items():
        assert np.array_equal(state[n], a), n
    assert state["safetensors_metadata"] == {"format": "pt"}


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_sharded_model_imported_and_loaded_tp2_pp2_under_mpirun(tmp_path):
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is Debian's python3-mpi4py (not in this interpreter)")
    _imported(tmp_path)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "4", sys.executable,
           os.path.join(HERE, "import_mpi_job.py"), str(tmp_path / "store")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "import mpi job ok: 4 ranks loaded TP2xPP2" in r.stdout


def test_export_round_trip_is_bit_exact_and_shards_like_hugging_face(tmp_path):
    tensors = {"a.bf16": hf_model.values("a", (5, 3), np.dtype("uint16")),
               "b.f16": hf_model.values("b", (4,), np.dtype("float16")),
               "c.f32": hf_model.values("c", (2, 3, 4), np.dtype("float32")),
               "d.i64": hf_model.values("d", (), np.dtype("int64")),
               "e.bool": hf_model.values("e", (9,), np.dtype("bool"))}
    src = tmp_path / "m.safetensors"
    hf_model.write_safetensors(str(src), tensors, {"format": "pt", "who": "test"})
    dcp.import_safetensors(tmp_path / "store", src)
    out = tmp_path / "out" / "m.safetensors"
    os.makedirs(out.parent)
    dcp.export_safetensors(tmp_path / "store", 0, out)
    header, data = _read(out)
    assert header["__metadata__"]["who"] == "test"
    for name, a in tensors.items():
        e = header[name]
        assert e["shape"] == list(a.shape)
        b, end = e["data_offsets"]
        assert data[b:end] == np.ascontiguousarray(a).tobytes(), name
    assert header["a.bf16"]["dtype"] == "BF16" and header["e.bool"]["dtype"] == "BOOL"
    r = dcp.export_safetensors(tmp_path / "store", 0, out, max_shard_bytes=64)
    assert len(r["files"]) > 1 and r["path"] == str(out) + ".index.json"
    with open(r["path"]) as f:
        index = json.load(f)
    assert sorted(index["weight_map"]) == sorted(tensors)
    for name, a in tensors.items():
        header, data = _read(out.parent / index["weight_map"][name])
        b, end = header[name]["data_offsets"]
        assert data[b:end] == np.ascontiguousarray(a).tobytes(), name


def _read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), f.read()


def test_the_safetensors_library_reads_what_dcp_exports(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open
    tensors = {"w.bf16": torch.randn(6, 4).to(torch.bfloat16), "w.f16": torch.randn(3).to(torch.float16),
               "w.f32": torch.randn(2, 5), "n.i64": torch.tensor([1, -2, 3]), "m.bool": torch.tensor([True, False])}
    st.save_file(tensors, str(tmp_path / "hf.safetensors"), metadata={"format": "pt"})
    dcp.import_safetensors(tmp_path / "store", tmp_path / "hf.safetensors")
    dcp.export_safetensors(tmp_path / "store", 0, tmp_path / "back.safetensors")
    with safe_open(str(tmp_path / "back.safetensors"), "pt") as f:
        assert sorted(f.keys()) == sorted(tensors)
        for name, t in tensors.items():
            got = f.get_tensor(name)
            assert got.dtype == t.dtype and got.shape == t.shape
            assert torch.equal(got.view(torch.uint8) if got.dtype == torch.bool else got, t.view(torch.uint8)
                               if t.dtype == torch.bool else t), name


def _malformed(tmp_path):
    def raw(name, header, data=b"", declared=None):
        text = header if isinstance(header, bytes) else json.dumps(header).encode()
        path = tmp_path / name
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text) if declared is None else declared) + text + data)
        return path, name
    yield raw("past.safetensors", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"", 4096), \
        "declares 4096 bytes but only"
    yield raw("overlap.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
              b"x" * 12), "tensor 'b' overlaps"
    yield raw("size.safetensors", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"x" * 8), \
        "tensor 'a': 8 bytes do not hold shape [3] of F32"
    yield raw("text.safetensors", b"this is not json", b""), "the header is not JSON"
    yield raw("huge.safetensors", b"{}", b"", 100 << 30), "more than the limit of 100000000"


def test_malformed_headers_are_refused_naming_file_and_tensor_and_nothing_is_committed(tmp_path):
    good = tmp_path / "good.safetensors"
    hf_model.write_safetensors(str(good), {"w": np.ones(3, dtype=np.float32)})
    dcp.import_safetensors(tmp_path / "store", good)
    for (path, name), message in _malformed(tmp_path):
        with pytest.raises(dcp.DataLossError) as e:
            dcp.import_safetensors(tmp_path / "store", path)
        assert name in str(e.value) and message in str(e.value), str(e.value)
    with dcp.Store.open(tmp_path / "store", "self", read_only=True) as store:
        assert store.steps() == [0]


def test_command_line_exit_codes(tmp_path):
    good = tmp_path / "good.safetensors"
    hf_model.write_safetensors(str(good), {"w": np.ones(3, dtype=np.float32)})
    run = [sys.executable, "-m", "dcp.convert", "from-safetensors"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    ok = subprocess.run(run + [str(tmp_path / "store"), str(good)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "imported 1 tensors" in ok.stdout, ok.stderr
    again = subprocess.run(run + [str(tmp_path / "store"), str(good), "--step", "0"], capture_output=True, text=True,
                           env=env)
    assert again.returncode == 1 and "step 0 already exists" in again.stderr
    usage = subprocess.run(run + ["--nope"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2
    unknown = subprocess.run([sys.executable, "-m", "dcp.convert", "from-nothing"], capture_output=True, text=True,
                             env=env)
    assert unknown.returncode == 2 and "from-safetensors" in unknown.stderr
