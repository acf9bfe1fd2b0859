// Copyright (c) dcp authors.
//
// PyCommunicator: a dcp::Communicator whose collectives are methods of a
// Python object (api/python/dcp/comm.py adapts a torch.distributed process
// group to it). Each collective is one Python call, made with the GIL held
// only for that call; the data path (encoding, I/O) never takes the GIL.
//
// The Python object provides: rank, size (ints), barrier(),
// broadcast(root, bytes) -> bytes, allgather(bytes) -> list[bytes],
// gather(root, bytes) -> list[bytes] (empty elsewhere),
// alltoall(list[bytes]) -> list[bytes], duplicate() -> another such object.
// A Python exception becomes IOError naming the collective.
//
// Thread safety: as dcp::Communicator (one thread at a time per object).

#ifndef DCP_API_PYTHON_PY_COMMUNICATOR_H_
#define DCP_API_PYTHON_PY_COMMUNICATOR_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "dcp/communicator.h"

namespace dcp::python {

std::unique_ptr<Communicator> NewPyCommunicator(pybind11::object impl);

}  // namespace dcp::python

#endif  // DCP_API_PYTHON_PY_COMMUNICATOR_H_
