#!/usr/bin/env python3
# dcp-inspect export checked by a reader that is not ours: Python's json and
# NumPy (Debian's python3-numpy) parse the safetensors file as its public
# description says, and every tensor must equal what `dcp-inspect dump --npy`
# wrote for it (which NumPy loads with np.load). Exits 77 (skipped) when NumPy
# is not installed.
#
#   check_safetensors.py DCP_DEMO DCP_INSPECT WORK_DIR
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

demo, inspect, work = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
root = os.path.join(work, "store")


def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


run(demo, "save", "--root", root, "--step", "7", "--hidden", "32", "--layers", "2", "--vocab", "64", "--ffn", "64")
path = os.path.join(work, "model.safetensors")
report = json.loads(run(inspect, root, "export", "7", "--safetensors", path, "--json"))

data = open(path, "rb").read()
(n,) = struct.unpack("<Q", data[:8])
assert n % 8 == 0, "header not padded to a multiple of 8"
header = json.loads(data[8 : 8 + n].decode("utf-8"))
buffer = data[8 + n :]
assert report["file_bytes"] == len(data)
meta = header.pop("__metadata__")
assert meta["format"] == "pt" and meta["dcp.step"] == "7", meta
assert len(header) == report["tensors"], (len(header), report["tensors"])

types = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
         "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BF16": "<u2"}
spans = []
for name, t in header.items():
    begin, end = t["data_offsets"]
    spans.append((begin, end))
    raw = np.frombuffer(buffer[begin:end], dtype=types[t["dtype"]])
    if t["dtype"] == "BF16":  # NumPy has no bfloat16: widen the bits to float32
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    tensor = raw.reshape(t["shape"])
    npy = os.path.join(work, "t.npy")
    run(inspect, root, "dump", "7", name, "--npy", npy)
    expected = np.load(npy)
    assert expected.shape == tensor.shape, (name, expected.shape, tensor.shape)
    assert np.array_equal(expected.view(np.uint8), tensor.view(np.uint8)), name
spans.sort()
at = 0
for begin, end in spans:
    assert begin == at, f"hole or overlap at {at}"
    at = end
assert at == len(buffer), "unindexed bytes at the end of the buffer"
print(f"{len(header)} tensors, {len(buffer)} bytes: OK")
