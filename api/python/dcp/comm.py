"""Communicators: which distributed engine a store's collectives run over.

``group`` (the argument of :func:`dcp.Store.open`, :func:`dcp.save`, ...) may be:

* ``None``: the default. If torch.distributed is initialized, its default
  process group (the job runs under torchrun); otherwise one process alone.
* a ``torch.distributed`` process group (gloo, or NCCL where the job has one;
  dcp's messages are small byte strings and go over a gloo group).
* an ``mpi4py`` communicator: dcp then calls MPI from C++ directly, through the
  communicator's handle (no Python per collective).
* ``"self"``: one process, even inside a distributed job.

With torch.distributed every collective is one call from dcp's C++ core into
this module, which makes a few of torch's calls (an all-gather: a gather and a
broadcast, and a second pair only for a message longer than its slot) on the
group, or on a gloo group over the same ranks where the group has no gloo
backend; never one per chunk; nothing is pickled: byte strings travel as uint8
tensors.
"""

import sys


class TorchCommunicator:
    """dcp's collectives over a torch.distributed gloo group (used by the C++ core)."""

    def __init__(self, group=None, _dcp_group=None):
        import torch
        import torch.distributed as dist
        self._torch = torch
        self._dist = dist
        self._user_group = group
        ranks = None if group is None else dist.get_process_group_ranks(group) \
            if hasattr(dist, "get_process_group_ranks") else None
        if _dcp_group is None:
            _dcp_group = _host_group(dist, group, ranks)
        self._group = _dcp_group
        self.rank = dist.get_rank(self._group)
        self.size = dist.get_world_size(self._group)
        self._ranks = ranks
        self._gather_slot = max(self._SLOT_MIN, min(self._SLOT_MAX, self._GATHER_BYTES // self.size - 8))
        self._bcast_slot = self._BCAST_SLOT

    def _global(self, r):
        return r if self._ranks is None else self._ranks[r]

    def _tensor(self, b):
        t = self._torch
        return t.frombuffer(bytearray(b), dtype=t.uint8) if len(b) else t.empty(0, dtype=t.uint8)

    def _all_gather(self, mine):
        """Every rank's `mine` (a tensor of the same size and dtype on every rank), in rank order, flat.

        Gathered by rank 0 and broadcast from it rather than torch's all_gather: gloo's all-gather
        is a ring, one latency step per rank, where the gather takes one and the broadcast a tree.
        Measured with 4 ranks on 2 cores: 1.2-1.5 ms against 3.2-3.8 ms from 264 bytes to 64 KiB (2
        ranks: 0.38-0.39 against 0.44-0.59 ms); every dcp save or load makes several."""
        t = self._torch
        mine = mine.reshape(-1)
        if mine.numel() == 0:
            return [mine.clone() for _ in range(self.size)]
        flat = t.empty(mine.numel() * self.size, dtype=mine.dtype)
        parts = list(flat.split(mine.numel()))
        self._dist.gather(mine, gather_list=parts if self.rank == 0 else None, dst=self._global(0),
                          group=self._group)
        self._dist.broadcast(flat, src=self._global(0), group=self._group)
        return parts

    def _sizes(self, n):
        t = self._torch
        return [int(x.item()) for x in self._all_gather(t.tensor([n], dtype=t.int64))]

    def barrier(self):
        self._dist.barrier(group=self._group)

    # Most of dcp's messages are short (statuses, signatures, a rank's
    # declarations): they travel in one collective, inline in a fixed slot
    # after an 8-byte length; only longer ones take a second collective for
    # the rest. A collective of a few ranks costs about the same up to
    # hundreds of KiB (measured with 4 ranks on 2 cores: gloo's all-gather
    # 3.3-3.8 ms from 256 bytes to 256 KiB, a broadcast 0.9-1.1 ms up to 256
    # KiB and 1.6 ms at 1 MiB, _all_gather's gather and broadcast 1.2-1.6 ms
    # up to 64 KiB slots, 2.3 ms at 128 KiB and 2.7 ms at 256 KiB), so slots
    # are large: a broadcast's 256 KiB (a manifest of a few hundred tensors
    # in one round); an all-gather's come from every rank, so they are at most
    # 64 KiB and shrink as the group grows (_GATHER_BYTES per round in all,
    # never below _SLOT_MIN).
    _SLOT_MIN = 248
    _SLOT_MAX = (64 << 10) - 8
    _GATHER_BYTES = 256 << 10
    _BCAST_SLOT = (256 << 10) - 8

    def _slot(self, data, slot):
        t = self._torch
        buf = t.zeros(8 + slot, dtype=t.uint8)
        buf[:8] = t.tensor([len(data)], dtype=t.int64).view(t.uint8)
        head = data[:slot]
        if head:
            buf[8: 8 + len(head)] = self._tensor(head)
        return buf

    def _unslot(self, buf, slot):
        n = int(buf[:8].view(self._torch.int64).item())
        return n, buf[8: 8 + min(n, slot)].numpy().tobytes()

    def broadcast(self, root, data):
        t = self._torch
        slot = self._bcast_slot
        buf = self._slot(data, slot) if self.rank == root else t.zeros(8 + slot, dtype=t.uint8)
        self._dist.broadcast(buf, src=self._global(root), group=self._group)
        n, head = self._unslot(buf, slot)
        if n <= slot:
            return data if self.rank == root else head
        rest = self._tensor(data[slot:]) if self.rank == root else t.empty(n - slot, dtype=t.uint8)
        self._dist.broadcast(rest, src=self._global(root), group=self._group)
        return data if self.rank == root else head + rest.numpy().tobytes()

    def allgather(self, data):
        t = self._torch
        slot = self._gather_slot
        parts = [self._unslot(b, slot) for b in self._all_gather(self._slot(data, slot))]
        top = max(n for n, _ in parts) - slot
        if top <= 0:
            return [head for _, head in parts]
        mine = t.zeros(top, dtype=t.uint8)
        if len(data) > slot:
            mine[: len(data) - slot] = self._tensor(data[slot:])
        rest = self._all_gather(mine)
        return [head + r[: max(0, n - slot)].numpy().tobytes() for (n, head), r in zip(parts, rest)]

    def gather(self, root, data):
        # gloo's gather: every rank sends, the root receives; sizes first.
        all_ = self.allgather(data) if self.size <= 64 else None
        if all_ is not None:
            return all_ if self.rank == root else []
        t = self._torch
        sizes = self._sizes(len(data))
        top = max(sizes)
        mine = t.zeros(top, dtype=t.uint8)
        if len(data):
            mine[: len(data)] = self._tensor(data)
        out = [t.empty(top, dtype=t.uint8) for _ in range(self.size)] if self.rank == root else None
        self._dist.gather(mine, gather_list=out, dst=self._global(root), group=self._group)
        return [o[:n].numpy().tobytes() for o, n in zip(out, sizes)] if self.rank == root else []

    def alltoall(self, send):
        # gloo has no all_to_all: every rank's messages are gathered, each keeps its own.
        t = self._torch
        header = t.tensor([len(s) for s in send], dtype=t.int64)
        headers = self._all_gather(header)
        blob = b"".join(send)
        blobs = self.allgather(blob)
        out = []
        for src in range(self.size):
            lens = [int(x) for x in headers[src].tolist()]
            start = sum(lens[: self.rank])
            out.append(blobs[src][start: start + lens[self.rank]])
        return out

    def duplicate(self):
        return TorchCommunicator(self._user_group, _dcp_group=_new_gloo_group(self._dist, self._ranks))


_GLOO_GROUPS = {}  # a non-gloo group -> the gloo group over the same ranks dcp made for it


def _host_group(dist, group, ranks):
    """A group that moves host tensors: `group` itself if its backend has gloo (torch 2.x's default
    group is often "cpu:gloo,cuda:nccl"), else a gloo group over the same ranks, made once (every
    rank of the group makes it at its first store, in the same order)."""
    if "gloo" in str(dist.get_backend(group)):
        return group
    key = dist.group.WORLD if group is None else group
    made = _GLOO_GROUPS.get(key)
    if made is None:
        made = _GLOO_GROUPS[key] = _new_gloo_group(dist, ranks)
    return made


def _new_gloo_group(dist, ranks):
    """A new gloo group over `ranks` (None: the world). A subgroup's is made by its ranks alone where
    torch allows it: otherwise new_group waits for every rank of the world, which a subgroup's ranks
    would do forever."""
    import inspect
    kwargs = {}
    subgroup = ranks is not None and len(ranks) < dist.get_world_size()
    if subgroup and "use_local_synchronization" in inspect.signature(dist.new_group).parameters:
        kwargs["use_local_synchronization"] = True
    return dist.new_group(ranks=ranks, backend="gloo", **kwargs)


def resolve(group):
    """(python communicator or None, MPI Fortran handle or -1) for a ``group`` argument."""
    if isinstance(group, str):
        if group == "self":
            return None, -1
        raise ValueError(f"group {group!r}: expected None, 'self', a torch.distributed group or an mpi4py communicator")
    if group is not None and hasattr(group, "py2f") and type(group).__module__.startswith("mpi4py"):
        return None, int(group.py2f())
    dist = sys.modules.get("torch.distributed")
    if group is None:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return TorchCommunicator(None), -1
        return None, -1
    if dist is not None and isinstance(group, getattr(dist, "ProcessGroup", ())):
        return TorchCommunicator(group), -1
    if all(hasattr(group, m) for m in ("rank", "size", "barrier", "broadcast", "allgather", "gather", "alltoall",
                                        "duplicate")):
        return group, -1  # an object speaking the protocol itself
    raise ValueError(f"group of type {type(group).__qualname__}: expected None, 'self', a torch.distributed "
                     "process group or an mpi4py communicator")
