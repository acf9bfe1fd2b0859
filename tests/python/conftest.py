"""pytest configuration: import the dcp package built by CMake (build/python by
default; DCP_PYTHON_DIR overrides), and give tests a fresh directory."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_BUILD = os.environ.get("DCP_PYTHON_DIR", os.path.join(_HERE, "..", "..", "build", "python"))
if os.path.isdir(_BUILD) and os.path.abspath(_BUILD) not in map(os.path.abspath, sys.path):
    sys.path.insert(0, os.path.abspath(_BUILD))
os.environ.setdefault("OMP_NUM_THREADS", "1")
