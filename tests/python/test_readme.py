"""The README's Python quick start, run as written: one process, twice into one store; with torch 2.x,
also under torchrun with 2 and then 4 ranks (Debian's 1.13 torchrun does not start on Python 3.11)."""

import os
import re
import subprocess
import sys

import pytest
import torch

_README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
_STORE = "/tmp/ckpt/run1"  # the quick start's path, replaced by the test's own directory


def _quick_start(store):
    with open(_README, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("### Python quick start"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert _STORE in code, "the quick start no longer saves to " + _STORE
    return code.replace(_STORE, str(store))


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _steps(store):
    import dcp
    with dcp.Store.open(str(store), group="self", read_only=True) as s:
        return s.steps()


def test_quick_start_runs_as_written_in_one_process(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(_quick_start(tmp_path / "store"))
    _run([sys.executable, str(script)], tmp_path)
    _run([sys.executable, str(script)], tmp_path)  # the same store again: the next steps
    assert _steps(tmp_path / "store") == [1, 2, 3]  # 0-3 saved, apply_retention(keep_last=3)


@pytest.mark.skipif(int(torch.__version__.split(".")[0]) < 2, reason="torch 1.13's torchrun fails on Python 3.11")
def test_quick_start_runs_as_written_under_torchrun(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(_quick_start(tmp_path / "store"))
    for ranks in (2, 4):
        _run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
              str(script)], tmp_path)
    assert _steps(tmp_path / "store") == [1, 2, 3]
