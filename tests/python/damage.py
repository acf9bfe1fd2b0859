"""Damage helpers for the Python tests."""

import os


def flip_manifest_byte(root, mask=0x10):
    """Flips bits `mask` of the middle byte of the one step manifest of the store at `root`."""
    steps = os.path.join(root, "steps")
    manifests = sorted(f for f in os.listdir(steps) if f.endswith(".manifest"))
    assert len(manifests) == 1, manifests
    path = os.path.join(steps, manifests[0])
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ mask]))
