"""The package under real mpirun with mpi4py (Debian's python3-mpi4py)."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_four_mpi_ranks_save_and_two_load_another_layout(tmp_path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "4", sys.executable,
           os.path.join(HERE, "mpi_job.py"), str(tmp_path / "store")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mpi job ok: 4 ranks saved, 2 loaded resharded" in r.stdout
