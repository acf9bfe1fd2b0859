"""One process: the Megatron layer and the Store, with torch and NumPy tensors."""

import numpy as np
import pytest
import torch

import dcp
import dcp.inspect as inspect_cli


def arange(shape, dtype=torch.float32, start=0):
    n = int(np.prod(shape)) if shape else 1
    return (torch.arange(n, dtype=torch.float64) + start).to(dtype).reshape(shape)


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128]


def carange(shape, dtype=torch.complex64):
    """Complex values with distinct real and imaginary parts: k + (100 + k)j."""
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    return torch.complex(arange(shape, real), arange(shape, real, start=100))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_torch_dtype_round_trips(tmp_path, dtype):
    if dtype == torch.bool:
        src = arange((5, 7)) % 3 == 0
    elif dtype.is_complex:
        src = carange((5, 7), dtype)
    else:
        src = arange((5, 7), dtype)
    dcp.save({"t": dcp.ShardedTensor.from_rank_offsets("t", src)}, tmp_path)
    out = torch.zeros_like(src)
    state = dcp.load({"t": dcp.ShardedTensor.from_rank_offsets("t", out)}, tmp_path)
    assert state["t"] is out
    assert torch.equal(out, src)


def test_numpy_arrays_and_strided_views(tmp_path):
    big = np.arange(64, dtype=np.float32).reshape(8, 8)
    view = big[:, 2:6]  # strided, not contiguous
    sd = {"v": dcp.ShardedTensor.from_rank_offsets("v", view)}
    dcp.save(sd, tmp_path)
    dest_big = np.zeros((8, 12), dtype=np.float32)
    dest = dest_big[:, 4:8]
    dcp.load({"v": dcp.ShardedTensor.from_rank_offsets("v", dest)}, tmp_path)
    assert (dest == view).all()
    assert (dest_big[:, :4] == 0).all() and (dest_big[:, 8:] == 0).all()
    # A transposed torch view as the source.
    t = arange((6, 4)).t()
    dcp.save({"t": dcp.ShardedTensor.from_rank_offsets("t", t)}, tmp_path, step=5)
    got = dcp.load_plain_tensors(tmp_path, step=5)["t"]
    assert torch.equal(got, t)


def test_sharded_along_axes_in_one_process_and_loaded_whole(tmp_path):
    full = arange((4, 6))
    sd = {f"p{i}": dcp.ShardedTensor.from_rank_offsets("w", full[i * 2:(i + 1) * 2].clone(), (0, i, 2))
          for i in range(2)}
    dcp.save(sd, tmp_path)
    out = dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(4, 6))}, tmp_path)["w"]
    assert torch.equal(out, full)
    meta = dcp.load_tensors_metadata(tmp_path)
    assert meta["w"].global_shape == (4, 6) and meta["w"].dtype == torch.float32 and meta["w"].data is None


def test_common_state_plain_values_and_tensors(tmp_path):
    common = {"iteration": 7, "lr": 1e-4, "flag": True, "name": "gpt", "raw": b"\x00\x01", "none": None,
              "nested": {"a": [1, 2, {"b": "c"}], "t": torch.tensor([1, 2, 3], dtype=torch.int64)},
              "rng": torch.ByteTensor([1, 2, 250])}
    sd = {"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2, 2))), **common}
    dcp.save(sd, tmp_path)
    got = dcp.load_common_state_dict(tmp_path)
    assert got["iteration"] == 7 and got["lr"] == 1e-4 and got["flag"] is True and got["name"] == "gpt"
    assert got["raw"] == b"\x00\x01" and got["none"] is None
    assert got["nested"]["a"] == [1, 2, {"b": "c"}]
    assert torch.equal(got["nested"]["t"], common["nested"]["t"])
    assert torch.equal(got["rng"], common["rng"]) and got["rng"].dtype == torch.uint8
    state = dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2, 2))}, tmp_path)
    assert state["iteration"] == 7 and state["nested"]["a"][2] == {"b": "c"}


def test_common_state_keeps_empty_dicts(tmp_path):
    """An empty dict is common state like any other value (Megatron keeps empty containers): a fresh
    optimizer's state_dict() has state={}, and load_state_dict needs the key."""
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    common = {"opt": opt.state_dict(), "a": {}, "c": {"d": {}, "e": [{}]}, "l": []}
    sd = {"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2, 2))), **common}
    dcp.save(sd, tmp_path)
    got = dcp.load_common_state_dict(tmp_path)
    assert got == common
    state = dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2, 2)), "c": {"d": {}}}, tmp_path)
    assert state["a"] == {} and state["c"] == {"d": {}, "e": [{}]} and state["opt"]["state"] == {}
    opt.load_state_dict(state["opt"])


def test_common_state_keeps_numpy_arrays_and_refuses_by_path(tmp_path):
    # NumPy arrays load back as NumPy arrays (torch tensors as torch), other byte orders included.
    philox = np.random.Philox(7).state  # uint64 arrays: as torch tensors they would not set back
    common = {"philox": philox, "be": np.arange(3, dtype=">i4"), "le": np.arange(4.0).reshape(2, 2),
              "t": torch.arange(3), "deep": [{"a": np.float32(1.5) * np.ones(2, dtype=np.float32)}]}
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2,))), "c": common}, tmp_path)
    got = dcp.load_common_state_dict(tmp_path)["c"]
    assert type(got["be"]) is np.ndarray and got["be"].tolist() == [0, 1, 2] and got["be"].dtype == np.int32
    assert type(got["le"]) is np.ndarray and (got["le"] == common["le"]).all()
    assert type(got["t"]) is torch.Tensor and torch.equal(got["t"], common["t"])
    assert type(got["deep"][0]["a"]) is np.ndarray
    resumed = np.random.Philox()
    resumed.state = got["philox"]
    assert np.random.Generator(resumed).random() == np.random.Generator(np.random.Philox(7)).random()
    # What dcp cannot store is refused naming its path.
    for bad, match in ((np.array(["x"]), "common state 'c.s': dtype .* is not supported"),
                       (torch.eye(2).to_sparse(), "common state 'c.s': torch.sparse_coo tensors are not supported"),
                       ("a\ud800", "common state 'c.s': the str is not valid UTF-8"),
                       ({"\udc80": 1}, "common state 'c.s': the key '.udc80' is not valid UTF-8"),
                       ({"__dcp_ndarray__": 1}, "the dict key '__dcp_ndarray__' is reserved by dcp")):
        with pytest.raises(ValueError, match=match):
            dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2,))), "c": {"s": bad}}, tmp_path,
                     step=9)
    assert dcp.Store.open(tmp_path, "self", read_only=True).steps() == [0]


def test_big_endian_numpy_tensors_are_saved_by_value_and_refused_as_destinations(tmp_path):
    src = np.arange(6, dtype=">f8").reshape(2, 3)
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", src)}, tmp_path)
    out = np.zeros((2, 3))
    dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", out)}, tmp_path)
    assert out.tolist() == src.tolist()
    with pytest.raises(ValueError, match="tensor 'w'.*non-native byte order"):
        dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", np.zeros((2, 3), dtype=">f8"))}, tmp_path)


def test_common_state_that_needs_pickle_is_a_type_error_naming_its_path(tmp_path):
    sd = {"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2,))), "sched": {"fn": lambda x: x}}
    with pytest.raises(TypeError, match=r"common state 'sched.fn' is of type 'function'.*nothing is pickled"):
        dcp.save(sd, tmp_path)
    with pytest.raises(TypeError, match=r"'opt.state\[1\]' is of type 'object'"):
        dcp.save({"opt": {"state": [1, object()]}}, tmp_path)
    with pytest.raises(TypeError, match=r"key 1 under .cfg.x. is not a str"):
        dcp.save({"cfg": {"x": {1: 2}}}, tmp_path)
    assert dcp.Store.open(tmp_path).steps() == []  # nothing committed


def test_sharded_objects_hold_bytes_or_plain_values(tmp_path):
    sd = {"a": dcp.ShardedObject("rng", {"seed": 3, "state": [1, 2]}, (2,), (0,)),
          "b": dcp.ShardedObject("rng", b"raw-bytes", (2,), (1,))}
    dcp.save(sd, tmp_path)
    req = {"a": dcp.ShardedObject("rng", None, (2,), (0,)), "b": dcp.ShardedObject("rng", None, (2,), (1,))}
    state = dcp.load(req, tmp_path)
    assert state["a"] == {"seed": 3, "state": [1, 2]} and state["b"] == b"raw-bytes"
    meta = dcp.load_sharded_metadata(tmp_path)
    assert set(meta) == {"rng/shard_0_2", "rng/shard_1_2"}
    with pytest.raises(TypeError, match="which dcp does not store"):
        dcp.save({"o": dcp.ShardedObject("x", object(), (1,), (0,))}, tmp_path)
    # An io.BytesIO (TransformerEngine's older extra state) comes back as a BytesIO at position 0; bytes that
    # look like dcp's own markers come back as the same bytes.
    import io
    buf = io.BytesIO(b"te-extra-state")
    buf.seek(0, io.SEEK_END)
    odd = [b"DCPOBJV1\x00x", b"DCPOBJB1\x00y"]
    sd = {"te": dcp.ShardedObject("te", buf, (1,), (0,)),
          "odd": [dcp.ShardedObject(f"odd{i}", odd[i], (1,), (0,)) for i in range(2)]}
    dcp.save(sd, tmp_path, step=2)
    req = {"te": dcp.ShardedObject("te", None, (1,), (0,)),
           "odd": [dcp.ShardedObject(f"odd{i}", None, (1,), (0,)) for i in range(2)]}
    state = dcp.load(req, tmp_path, step=2)
    assert type(state["te"]) is io.BytesIO and state["te"].tell() == 0 and state["te"].read() == b"te-extra-state"
    assert state["odd"] == odd


def test_megatron_rng_state_and_other_python_values_come_back_as_they_were(tmp_path):
    """Megatron's rng_state ShardedObject holds random.getstate() and np.random.get_state() (tuples that
    random.setstate / np.random.set_state require); common state and objects keep tuples, NumPy scalars,
    io.BytesIO, torch dtypes and ints past 64 bits, with nothing pickled."""
    import io
    import random
    random.seed(5)
    np.random.seed(6)
    rng = {"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
           "torch_rng_state": torch.get_rng_state()}
    odd = {"betas": (0.9, 0.999), "size": torch.Size([2, 3]), "mean": np.float64(0.25), "n": np.int64(7),
           "flag": np.bool_(True), "dtype": torch.bfloat16, "big": 1 << 100, "buf": io.BytesIO(b"xy"),
           "nested": [(1, (2, [3])), {"t": ()}], "name": np.str_("gpt"), "raw": np.bytes_(b"\x00")}
    sd = {"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2, 2))),
          "rng": dcp.ShardedObject("rng_state", rng, (1,), (0,)), **odd}
    dcp.save(sd, tmp_path)
    state = dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2, 2)),
                      "rng": dcp.ShardedObject("rng_state", None, (1,), (0,))}, tmp_path)
    expected = [random.random() for _ in range(3)], np.random.rand(3).tolist(), torch.rand(3)
    random.setstate(state["rng"]["random_rng_state"])
    np.random.set_state(state["rng"]["np_rng_state"])
    torch.set_rng_state(state["rng"]["torch_rng_state"])
    assert ([random.random() for _ in range(3)], np.random.rand(3).tolist()) == expected[:2]
    assert torch.equal(torch.rand(3), expected[2])
    got = dcp.load_common_state_dict(tmp_path)
    assert got["betas"] == (0.9, 0.999) and type(got["betas"]) is tuple and got["size"] == (2, 3)
    assert type(got["mean"]) is np.float64 and got["mean"] == 0.25 and type(got["n"]) is np.int64
    assert type(got["flag"]) is np.bool_ and got["dtype"] is torch.bfloat16 and got["big"] == 1 << 100
    assert got["buf"].getvalue() == b"xy" and got["nested"] == [(1, (2, [3])), {"t": ()}]
    assert got["name"] == "gpt" and got["raw"] == b"\x00"
    # The markers are dcp's: a dict using one as a key is refused, naming where.
    for bad, where in (({"y": {"__dcp_tuple__": [1]}}, "'x.y'"), ([{"__dcp_int__": "5"}], "'x.0'")):
        with pytest.raises(ValueError, match=f"{where}: (a|the) dict key '__dcp_(tuple|int)__' is reserved by dcp"):
            dcp.save({"x": bad}, tmp_path, step=1)
    assert dcp.Store.open(tmp_path, "self", read_only=True).steps() == [0]


def test_declaration_mismatches_are_value_errors_naming_the_key(tmp_path):
    t = arange((2, 3))
    with pytest.raises(ValueError, match="tensor 'w': data dtype torch.float32 differs from the declared dtype"):
        dcp.ShardedTensor("w", t, torch.float16, (2, 3), (2, 3), (0, 0))
    with pytest.raises(ValueError, match=r"tensor 'w': data shape \(2, 3\) differs from the declared local shape"):
        dcp.ShardedTensor("w", t, torch.float32, (3, 2), (3, 2), (0, 0))
    with pytest.raises(dcp.InvalidArgumentError, match="invalid rank offset 2 of 2"):
        dcp.ShardedTensor.from_rank_offsets("w", t, (0, 2, 2))
    # The core checks what the dataclass cannot: a shard outside its tensor.
    st = dcp.ShardedTensor("w", t, torch.float32, (2, 3), (2, 3), (1, 0))
    with pytest.raises(dcp.InvalidArgumentError, match="'w'"):
        dcp.save({"w": st}, tmp_path)


def test_errors_are_typed(tmp_path):
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2,)))}, tmp_path, step=3)
    with pytest.raises(dcp.AlreadyExistsError, match="step 3 already exists"):
        dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((2,)))}, tmp_path, step=3)
    with pytest.raises(dcp.NotFoundError, match="step 9 is not committed"):
        dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2))}, tmp_path, step=9)
    with pytest.raises(FileNotFoundError):
        dcp.load({}, tmp_path / "nope")
    with pytest.raises(dcp.InvalidArgumentError, match="requests dtype float64"):
        dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(2, dtype=torch.float64))}, tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    with pytest.raises(dcp.FailedPreconditionError, match="is not a dcp store"):
        dcp.save({}, tmp_path / "other")
    assert issubclass(dcp.DataLossError, OSError) and issubclass(dcp.InvalidArgumentError, ValueError)


def test_store_api(tmp_path):
    with dcp.Store.open(tmp_path) as store:
        w = arange((8, 4))
        sd = {"model": {"w": dcp.ShardedTensor.from_rank_offsets("w", w)}, "it": 1}
        r = store.put(1, sd)
        assert r.chunks_written == 1 and r.raw_bytes_written == 128
        r2 = store.put(2, sd)
        assert r2.chunks_written == 0 and r2.chunks_referenced == 1
        assert store.steps() == [1, 2] and store.latest_step() == 2
        assert store.latest_step_at_open() is None  # the open's view: the store was empty
        meta = store.metadata(2)
        assert meta["tensors"][0]["key"] == "w" and meta["info"]["world_size"] == 1
        region = store.read(2, "w", (slice(2, 5), slice(1, 3)))
        assert torch.equal(region, w[2:5, 1:3])
        out = np.zeros((1, 4), np.float32)
        store.read(1, "w", ((7, 0), (1, 4)), out)
        assert (out == w[7:8].numpy()).all()
        req = {"model": {"w": dcp.ShardedTensor.from_rank_offsets("w", torch.zeros(8, 4))}}
        res = store.get(2, req)
        assert torch.equal(req["model"]["w"].data, w) and res.common_state["it"] == 1
        assert res.report.chunks_read == 1
        store.begin_step(3)
        store.put_part({"a": dcp.ShardedTensor.from_rank_offsets("a", arange((3,)))})
        store.put_part({"b": dcp.ShardedTensor.from_rank_offsets("b", arange((2,)))})
        store.commit_step()
        tensors, _, _ = store.load_plain(3)
        assert set(tensors) == {"a", "b"}
        assert store.remove_tensors(3, "b") == ["b"]
        assert set(store.load_plain(3)[0]) == {"a"}
        assert store.apply_retention(keep_last=2) == [1]
        store.delete_step(2)
        assert store.steps() == [3]
        gc = store.collect_garbage(compact_dead_fraction=0.0)
        assert gc.generations_removed >= 1
    with pytest.raises(dcp.FailedPreconditionError, match="closed"):
        store.steps()
    with dcp.Store.open(tmp_path, read_only=True) as store:
        assert store.latest_step_at_open() == 3 == store.latest_step(collective=True)


def test_put_async_snapshots_the_tensors(tmp_path):
    w = arange((256, 256))
    expect = w.clone()
    with dcp.Store.open(tmp_path) as store:
        store.put_async(1, {"w": dcp.ShardedTensor.from_rank_offsets("w", w)})
        w.fill_(-1)  # the caller overwrites its tensor at once
        report = store.wait()
        assert report.chunks_written >= 1
        assert store.poll() == report  # collected: the same outcome again
    got = dcp.load_plain_tensors(tmp_path, step=1)["w"]
    assert torch.equal(got, expect)


def test_allow_shape_mismatch_pads_and_clips(tmp_path):
    emb = arange((10, 4))
    dcp.save({"emb": dcp.ShardedTensor.from_rank_offsets("emb", emb)}, tmp_path)
    padded = torch.full((16, 4), 7.0)
    dcp.load({"emb": dcp.ShardedTensor.from_rank_offsets("emb", padded, allow_shape_mismatch=True)}, tmp_path)
    assert torch.equal(padded[:10], emb) and (padded[10:] == 0).all()
    clipped = torch.zeros(8, 4)
    dcp.load({"emb": dcp.ShardedTensor.from_rank_offsets("emb", clipped, allow_shape_mismatch=True)}, tmp_path)
    assert torch.equal(clipped, emb[:8])
    with pytest.raises(ValueError, match="allow_shape_mismatch"):
        dcp.load({"emb": dcp.ShardedTensor.from_rank_offsets("emb", torch.zeros(8, 4))}, tmp_path)


def test_flattened_ranges(tmp_path):
    full = arange((4, 5))
    flat = full.reshape(-1)
    sd = {f"s{i}": dcp.ShardedTensor.from_rank_offsets_flat("opt", flat[a:b].clone(), (4, 5),
                                                             flattened_range=slice(a, b))
          for i, (a, b) in enumerate([(0, 7), (7, 13), (13, 20)])}
    dcp.save(sd, tmp_path)
    assert torch.equal(dcp.load_plain_tensors(tmp_path)["opt"], full)
    part = torch.zeros(9)
    dcp.load({"p": dcp.ShardedTensor.from_rank_offsets_flat("opt", part, (4, 5), flattened_range=slice(3, 12))},
             tmp_path)
    assert torch.equal(part, flat[3:12])


def test_factory_builds_and_merges(tmp_path):
    fused = arange((6, 3))  # [w; v] halves saved as two tensors

    def build(key, data, replica_id, flattened_range):
        return {"w": dcp.ShardedTensor.from_rank_offsets(key + ".w", data[:3]),
                "v": dcp.ShardedTensor.from_rank_offsets(key + ".v", data[3:])}

    def merge(sub):
        return torch.cat([sub["w"], sub["v"]])

    dcp.save({"fc1": dcp.ShardedTensorFactory("fc1", fused, build, merge)}, tmp_path)
    assert set(dcp.load_tensors_metadata(tmp_path)) == {"fc1.w", "fc1.v"}
    dest = torch.zeros(6, 3)
    state = dcp.load({"fc1": dcp.ShardedTensorFactory("fc1", dest, build, merge)}, tmp_path)
    assert torch.equal(state["fc1"], fused)


@pytest.mark.parametrize("mode", list(dcp.StrictHandling), ids=lambda m: m.value)
def test_strict_handling_modes(tmp_path, mode):
    dcp.save({"a": dcp.ShardedTensor.from_rank_offsets("a", arange((2,))),
              "b": dcp.ShardedTensor.from_rank_offsets("b", arange((2,)))}, tmp_path)
    req = {"a": dcp.ShardedTensor.from_rank_offsets("a", torch.zeros(2)),
           "x": dcp.ShardedTensor.from_rank_offsets("x", torch.zeros(2))}
    if mode in (dcp.StrictHandling.ASSUME_OK_UNEXPECTED, dcp.StrictHandling.RAISE_UNEXPECTED,
                dcp.StrictHandling.RAISE_ALL):
        with pytest.raises(dcp.NotFoundError, match="'x'"):
            dcp.load(req, tmp_path, strict=mode)
        return
    out = dcp.load(req, tmp_path, strict=mode)
    state = out[0] if isinstance(out, tuple) else out
    assert torch.equal(state["a"], arange((2,)))
    if mode == dcp.StrictHandling.RETURN_ALL:
        assert out[1] == {"b"} and out[2] == {"x"}
    if mode == dcp.StrictHandling.RETURN_UNEXPECTED:
        assert out[1] == set() and out[2] == {"x"}


def test_remove_sharded_tensors(tmp_path):
    dcp.save({"keep": dcp.ShardedTensor.from_rank_offsets("keep.w", arange((2,))),
              "drop": dcp.ShardedTensor.from_rank_offsets("drop.w", arange((2,)))}, tmp_path)
    assert dcp.remove_sharded_tensors(tmp_path, "drop") == ["drop.w"]
    assert set(dcp.load_tensors_metadata(tmp_path)) == {"keep.w"}


def test_complex_numbers_torch_numpy_lazy_views_and_tools(tmp_path, capfd):
    # torchtitan's rotary table is a complex64 buffer in the model's state dict.
    freqs = carange((6, 4))
    np_z = (np.arange(12).reshape(3, 4) + 1j * np.arange(12, 24).reshape(3, 4)).astype(np.complex128)[:, 1:3]
    z = carange((4,), torch.complex128)
    sd = {"freqs_cis": dcp.ShardedTensor.from_rank_offsets("freqs_cis", freqs),
          "np": dcp.ShardedTensor.from_rank_offsets("np", np_z),  # a strided NumPy view
          # Lazily conjugated and negated views are saved as their values, not their memory.
          "conj": dcp.ShardedTensor.from_rank_offsets("conj", z.conj()),
          "neg": dcp.ShardedTensor.from_rank_offsets("neg", z.conj().imag),
          "common": {"small": carange((2,)), "small_conj": carange((2,)).conj()}}
    assert sd["conj"].data.is_conj() and sd["neg"].data.is_neg()
    dcp.save(sd, tmp_path, step=3)
    out = {"freqs_cis": dcp.ShardedTensor.from_rank_offsets("freqs_cis", torch.zeros(6, 4, dtype=torch.complex64)),
           "np": dcp.ShardedTensor.from_rank_offsets("np", np.zeros((3, 2), dtype=np.complex128)),
           "conj": dcp.ShardedTensor.from_rank_offsets("conj", torch.zeros(4, dtype=torch.complex128)),
           "neg": dcp.ShardedTensor.from_rank_offsets("neg", torch.zeros(4, dtype=torch.float64))}
    got = dcp.load(out, tmp_path, step=3)
    assert torch.equal(got["freqs_cis"], freqs)
    assert (got["np"] == np_z).all() and got["np"].dtype == np.complex128
    assert torch.equal(got["conj"], z.conj().resolve_conj())
    assert torch.equal(got["neg"], -z.imag) and not got["neg"].is_neg()
    common = dcp.load_common_state_dict(tmp_path, step=3)["common"]
    assert torch.equal(common["small"], carange((2,)))
    assert torch.equal(common["small_conj"], carange((2,)).conj().resolve_conj())
    meta = dcp.load_tensors_metadata(tmp_path, step=3)
    assert meta["freqs_cis"].dtype == torch.complex64 and meta["np"].dtype == torch.complex128
    # Loading into a lazily conjugated view would write values into memory that means their conjugates.
    dest = torch.zeros(4, dtype=torch.complex128).conj()
    with pytest.raises(ValueError, match="tensor 'conj'.*cannot load into a lazily conjugated or negated view"):
        dcp.load({"conj": dcp.ShardedTensor.from_rank_offsets("conj", dest)}, tmp_path, step=3)
    # The tools: values as Python prints them, safetensors' C64 (it has no complex128).
    assert inspect_cli.main([str(tmp_path), "dump", "3", "freqs_cis"]) == 0
    text = capfd.readouterr().out
    assert "1+101j" in text and "of |z|: min 100" in text
    assert inspect_cli.main([str(tmp_path), "--json", "dump", "3", "freqs_cis"]) == 0
    import json
    dumped = json.loads(capfd.readouterr().out)
    assert dumped["head"][:2] == [[0.0, 100.0], [1.0, 101.0]]  # [real, imaginary]
    assert dumped["stats"]["min"] == 100.0  # of the magnitudes: |0 + 100j|
    for raw in ([], ["--raw"]):  # NumPy's complex128 is the stored bits either way
        assert inspect_cli.main([str(tmp_path), "dump", "3", "np", "--npy", str(tmp_path / "np.npy")] + raw) == 0
        back = np.load(tmp_path / "np.npy")
        assert back.dtype == np.complex128 and (back == np_z).all()
    with pytest.raises(ValueError, match="has dtype complex128, which safetensors lacks"):
        dcp.export_safetensors(tmp_path, 3, tmp_path / "all.safetensors")
    dcp.save({"freqs_cis": dcp.ShardedTensor.from_rank_offsets("freqs_cis", freqs)}, tmp_path, step=4)
    dcp.export_safetensors(tmp_path, 4, tmp_path / "f.safetensors")
    import struct
    raw = (tmp_path / "f.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert json.loads(raw[8:8 + n])["freqs_cis"]["dtype"] == "C64"
    assert np.frombuffer(raw[8 + n:], dtype=np.complex64).tolist() == freqs.reshape(-1).tolist()


def test_expanded_views_are_saved_but_not_loaded_into(tmp_path):
    x = arange((3, 1)).expand(3, 4)  # stride 0 on axis 1
    dcp.save({"x": dcp.ShardedTensor.from_rank_offsets("x", x)}, tmp_path)
    dest = torch.zeros(3, 1).expand(3, 4)
    with pytest.raises(ValueError, match="key 'x'.*stride 0 on axis 1 of extent 4, so its elements share memory"):
        dcp.load({"x": dcp.ShardedTensor.from_rank_offsets("x", dest)}, tmp_path)
    out = torch.zeros(3, 4)
    dcp.load({"x": dcp.ShardedTensor.from_rank_offsets("x", out)}, tmp_path)
    assert torch.equal(out, x)


def test_loads_allocate_when_the_request_has_no_data(tmp_path):
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((3, 2)))}, tmp_path)
    req = {"w": dcp.ShardedTensor("w", None, torch.float32, (3, 2), (3, 2), (0, 0))}
    state = dcp.load(req, tmp_path)
    assert torch.equal(state["w"], arange((3, 2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors(tmp_path):
    w = arange((64, 64)).cuda()
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", w)}, tmp_path)
    out = torch.zeros(64, 64, device="cuda")
    dcp.load({"w": dcp.ShardedTensor.from_rank_offsets("w", out)}, tmp_path)
    assert torch.equal(out.cpu(), w.cpu())


def test_inspect_from_python(tmp_path, capfd):
    dcp.save({"w": dcp.ShardedTensor.from_rank_offsets("w", arange((4, 4)))}, tmp_path, step=12)
    assert inspect_cli.main([str(tmp_path), "ls"]) == 0
    assert inspect_cli.main([str(tmp_path), "verify"]) == 0
    assert inspect_cli.main([str(tmp_path), "nope"]) == 2
    out = capfd.readouterr().out
    assert "12" in out and "OK: no problems" in out
    r = dcp.export_safetensors(tmp_path, 12, tmp_path / "m.safetensors")
    assert r["tensors"] == 1
    import json
    import struct
    raw = (tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["w"]["dtype"] == "F32" and header["w"]["shape"] == [4, 4]
    assert np.frombuffer(raw[8 + n:], dtype=np.float32).tolist() == arange((4, 4)).reshape(-1).tolist()
    with pytest.raises(ValueError, match="not a regular file"):
        dcp.export_safetensors(tmp_path, 12, "/dev/null")
