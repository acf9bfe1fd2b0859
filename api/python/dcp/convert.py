"""Checkpoints of other formats into a dcp store, and back out.

``python3 -m dcp.convert SUBCOMMAND ...``:

* ``from-safetensors ROOT SOURCE [--rules FILE] ...``: a safetensors model (one
  file, or a sharded model's ``*.safetensors.index.json``) into one step, each
  tensor a whole shard any layout can load; key mapping rules rename, split
  and concatenate on the way in (the ``dcp-import`` tool; ``--help`` lists its
  options). Streamed in bounded memory, in C++.

The way out to safetensors is ``python3 -m dcp.inspect ROOT export STEP
--safetensors FILE [--max-shard-size 5GB]``.
"""

import sys

from . import _dcp


def import_safetensors(checkpoint_dir, source, step=None, *, rules=None, keep_unmatched=False, overwrite=False,
                       incremental=False, chunk_bytes=0, threads=0):
    """Imports the safetensors model at `source` as step `step` (default: the latest + 1) of the
    store `checkpoint_dir` (created if missing). `rules`: a key mapping rules file (JSON; see
    docs/format.md). Returns what was imported (a dict). Raises dcp's errors (DataLossError for
    a malformed file, naming the file and tensor; InvalidArgumentError for the mapping)."""
    return _dcp.import_safetensors(str(checkpoint_dir), str(source), None if step is None else int(step),
                                   "" if rules is None else str(rules), bool(keep_unmatched), bool(overwrite),
                                   bool(incremental), int(chunk_bytes), int(threads))


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"from-safetensors": "dcp-import"}
    if not args or args[0] in ("-h", "--help") or args[0] not in commands:
        print(__doc__.strip(), file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    sys.stdout.flush()
    sys.stderr.flush()
    return _dcp.import_main([commands[args[0]]] + [str(a) for a in args[1:]])


if __name__ == "__main__":
    sys.exit(main())
