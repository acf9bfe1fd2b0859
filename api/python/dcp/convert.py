"""Checkpoints of other formats into a dcp store, and back out.

``python3 -m dcp.convert SUBCOMMAND ...``:

* ``from-safetensors ROOT SOURCE [--rules FILE] ...``: a safetensors model (one
  file, or a sharded model's ``*.safetensors.index.json``) into one step, each
  tensor a whole shard any layout can load; key mapping rules rename, split
  and concatenate on the way in (the ``dcp-import`` tool; ``--help`` lists its
  options). Streamed in bounded memory, in C++.

* ``from-torch-dcp ROOT DIR [--step N]``: a PyTorch distributed checkpoint
  (``.metadata`` + ``*.distcp``, torch 1.13 or 2.x) into one step: each chunk a
  shard at its global offsets, each BYTE_IO item an object holding its bytes.
* ``from-torch-dist ROOT DIR [--step N] [--trust-pickle]``: Megatron-Core's
  ``torch_dist`` directory: tensors as above, ShardedObjects as dcp objects at
  their offsets, ``common.pt`` as the common state.
* ``from-torch-save ROOT FILE... (--offsets JSON | --tp N [--pp N] [--split PATTERN=AXIS]...)``:
  per-rank ``torch.save`` files of a known layout.
* ``to-torch-dcp ROOT DIR [--step N]``: a step out as a PyTorch distributed
  checkpoint, written by torch's own FileSystemWriter (each tensor whole).
* ``to-torch-save ROOT OUTDIR (--offsets JSON | --tp N [--pp N] [--split PATTERN=AXIS]...)``:
  one ``torch.save`` file per rank of a layout.

The torch converters never run pickled code: ``.metadata`` is read by a
restricted unpickler, ``torch.save`` blobs with ``weights_only=True``; what
needs more is refused unless ``--trust-pickle``. Imports stream whole tensors
in parts of ``--part-bytes`` (default 256 MiB) and commit at the end.
Exit status: 0 done, 1 error (message on stderr), 2 usage.

The way out to safetensors is ``python3 -m dcp.inspect ROOT export STEP
--safetensors FILE [--max-shard-size 5GB]``.
"""

import argparse
import json

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


_TORCH_COMMANDS = ("from-torch-dcp", "from-torch-dist", "from-torch-save", "to-torch-dcp", "to-torch-save")


def _layout_options(p):
    p.add_argument("--offsets", help="layout JSON: {global_shapes: {key: shape}, files: {file: {key: offsets | "
                                     "{offset, shape, key}}}}")
    p.add_argument("--tp", type=int, help="tensor-parallel size (files mp_rank_TT[_PPP].pt)")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel size (default 1)")
    p.add_argument("--split", action="append", default=[], metavar="PATTERN=AXIS",
                   help="keys matching PATTERN (fnmatch) split along AXIS across TP ranks; others are replicated")
    p.add_argument("--layer-pattern", default=r"layers\.(\d+)\.", help="regex whose group 1 is the layer number")
    p.add_argument("--last-stage", action="append", default=[], metavar="PATTERN",
                   help="keys without a layer number that belong to the last pipeline stage")


def _parser():
    p = argparse.ArgumentParser(prog="python3 -m dcp.convert", description="PyTorch checkpoints in and out of dcp")
    sub = p.add_subparsers(dest="command", required=True)
    for name, what in (("from-torch-dcp", "a PyTorch distributed checkpoint directory"),
                       ("from-torch-dist", "a Megatron torch_dist checkpoint directory")):
        c = sub.add_parser(name, help=f"import {what}")
        c.add_argument("root", help="the dcp store (created if missing)")
        c.add_argument("source", help=what)
    c = sub.add_parser("from-torch-save", help="import per-rank torch.save files of a known layout")
    c.add_argument("root")
    c.add_argument("files", nargs="+")
    _layout_options(c)
    for name in _TORCH_COMMANDS[:3]:
        c = sub.choices[name]
        c.add_argument("--step", type=int, help="the step to write (default: the latest + 1)")
        c.add_argument("--trust-pickle", action="store_true", help="allow blobs that need full unpickling")
        c.add_argument("--part-bytes", type=int, default=0, help="bytes of tensors per streamed part")
        c.add_argument("--overwrite", action="store_true", help="replace the step if it exists")
    c = sub.add_parser("to-torch-dcp", help="write a step as a PyTorch distributed checkpoint")
    c.add_argument("root")
    c.add_argument("target")
    c.add_argument("--step", type=int, help="the step (default: the latest)")
    c = sub.add_parser("to-torch-save", help="write a step as per-rank torch.save files")
    c.add_argument("root")
    c.add_argument("outdir")
    c.add_argument("--step", type=int, help="the step (default: the latest)")
    _layout_options(c)
    return p


def _run_torch(argv):
    a = _parser().parse_args(argv)
    if a.command in ("from-torch-save", "to-torch-save") and (a.offsets is None) == (a.tp is None):
        print(f"python3 -m dcp.convert {a.command}: give exactly one of --offsets and --tp", file=sys.stderr)
        return 2
    from . import _convert_torch as ct
    from .errors import DcpError
    try:
        if a.command == "from-torch-dcp":
            r = ct.from_torch_dcp(a.root, a.source, a.step, trust_pickle=a.trust_pickle, part_bytes=a.part_bytes,
                                  overwrite=a.overwrite)
        elif a.command == "from-torch-dist":
            r = ct.from_torch_dist(a.root, a.source, a.step, trust_pickle=a.trust_pickle, part_bytes=a.part_bytes,
                                   overwrite=a.overwrite)
        elif a.command == "from-torch-save":
            r = ct.from_torch_save(a.root, a.files, a.step, offsets=a.offsets, tp=a.tp, pp=a.pp, splits=a.split,
                                   layer_pattern=a.layer_pattern, last_stage=a.last_stage,
                                   trust_pickle=a.trust_pickle, part_bytes=a.part_bytes, overwrite=a.overwrite)
        elif a.command == "to-torch-dcp":
            r = ct.to_torch_dcp(a.root, a.target, a.step)
        else:
            r = ct.to_torch_save(a.root, a.outdir, a.step, offsets=a.offsets, tp=a.tp, pp=a.pp, splits=a.split,
                                 layer_pattern=a.layer_pattern, last_stage=a.last_stage)
    except (DcpError, OSError, TypeError, ValueError) as e:
        print(f"python3 -m dcp.convert {a.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(r))
    return 0


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"from-safetensors": "dcp-import"}
    if args and args[0] in _TORCH_COMMANDS:
        try:
            return _run_torch([str(a) for a in args])
        except SystemExit as e:  # argparse: usage errors are 2, --help 0
            return int(e.code or 0)
    if not args or args[0] in ("-h", "--help") or args[0] not in commands:
        print(__doc__.strip(), file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    sys.stdout.flush()
    sys.stderr.flush()
    return _dcp.import_main([commands[args[0]]] + [str(a) for a in args[1:]])


def __getattr__(name):
    # The torch converters import torch only when used.
    if name in ("from_torch_dcp", "from_torch_dist", "from_torch_save", "to_torch_dcp", "to_torch_save",
                "read_dcp_metadata"):
        from . import _convert_torch
        return getattr(_convert_torch, name)
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
