"""dcp-inspect from Python: ``python3 -m dcp.inspect ROOT [SUBCOMMAND] ...`` is the
dcp-inspect tool (ls, show, layout, verify, diff, dump, export, common; --help),
and :func:`export_safetensors` its export as a function."""

import sys

from . import _dcp


def main(argv=None):
    """Runs dcp-inspect with `argv` (default: sys.argv[1:]); returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    return _dcp.inspect_main(["dcp-inspect"] + [str(a) for a in args])


def export_safetensors(checkpoint_dir, step, path, keys="", max_shard_bytes=0):
    """Writes `step`'s tensors, consolidated, to the safetensors file `path` (streamed in
    bounded memory); `keys` a glob of tensor keys. With `max_shard_bytes`, a sharded model in
    Hugging Face's layout (`<stem>-00001-of-0000N.safetensors` and `<path>.index.json`).
    Returns what was written."""
    return _dcp.export_safetensors(str(checkpoint_dir), int(step), str(path), str(keys), int(max_shard_bytes))


if __name__ == "__main__":
    sys.exit(main())
