#!/usr/bin/env python3
# Copyright (c) dcp authors.
#
# The layering of docs/architecture.md, enforced: every #include "..." of the
# engine, the facade (api/src), the tools and the Python bindings is checked
# against what its module may use. Fails naming each forbidden include.
#   check_includes.py <repository root>

import pathlib
import re
import sys

# Engine modules, lowest first, and the engine modules each may include
# (its own headers are always allowed).
ENGINE = {
    "base": [],
    "wire": [],
    "array": [],
    "codec": ["base"],
    "cuda": ["array", "base"],
    "manifest": ["array", "codec", "wire"],
    "sharding": ["array", "codec", "cuda", "manifest"],
    "store": ["base", "codec"],
    "write": ["array", "base", "codec", "cuda", "manifest", "sharding", "store"],
    "query": ["array", "base", "codec", "cuda", "manifest", "sharding", "store", "wire"],
    "coord": ["base", "wire"],
    "protocol": ["base", "codec", "coord", "cuda", "manifest", "query", "sharding", "store", "wire", "write"],
    "interop": ["base", "codec", "manifest", "protocol", "query", "sharding", "store", "write"],
    "inspect": ["base", "codec", "interop", "manifest", "query", "sharding", "store"],
}
# Public headers that are vocabulary, usable anywhere. The facade (store.h,
# the dcp.h umbrella), the Megatron helpers, MPI and LibTorch are not.
VOCABULARY = {"communicator.h", "factory.h", "log.h", "metadata.h", "options.h", "plain.h", "reports.h", "sharded.h",
              "state_dict.h", "status.h", "tensor_view.h", "types.h", "value.h"}
EXTRA_PUBLIC = {"coord": {"mpi.h"}}  # the MPI communicator lives in coord

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def allowed(path: pathlib.Path, root: pathlib.Path, inc: str) -> bool:
    rel = path.relative_to(root).parts
    if rel[0] == "engine":
        module = rel[1]
        if inc.startswith("engine/"):
            target = inc.split("/")[1]
            return target == module or target in ENGINE[module]
        if inc.startswith("dcp/"):
            name = inc[len("dcp/"):]
            return name in VOCABULARY or name in EXTRA_PUBLIC.get(module, set())
        # Generated FlatBuffers headers of the manifest module.
        return module == "manifest" and inc.endswith("_generated.h")
    if rel[0] == "api" and rel[1] == "src":
        # The facade may use the whole engine but never the tools or tests.
        return inc.startswith(("engine/", "dcp/", "api/src/"))
    if rel[0] == "api" and rel[1] == "include":
        return inc.startswith("dcp/")
    if rel[0] == "tools":
        # Thin mains: the public API, the inspect and import command lines, the synthetic model.
        return inc.startswith(("dcp/", "engine/inspect/", "engine/interop/cli.h", "tools/"))
    return True


def main() -> int:
    root = pathlib.Path(sys.argv[1]).resolve()
    bad = []
    sources = [p for d in ("engine", "api/src", "api/include", "tools") for p in (root / d).rglob("*")
               if p.suffix in (".h", ".cc")]
    for p in sorted(sources):
        if p.parts[len(root.parts)] == "engine" and p.parts[len(root.parts) + 1] not in ENGINE:
            bad.append(f"{p.relative_to(root)}: module '{p.parts[len(root.parts) + 1]}' is not in the layering table")
            continue
        for inc in INCLUDE.findall(p.read_text(errors="replace")):
            if not allowed(p, root, inc):
                bad.append(f'{p.relative_to(root)}: #include "{inc}" crosses the layering (docs/architecture.md)')
    for b in bad:
        print(b)
    print(f"{len(sources)} files checked, {len(bad)} forbidden includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
