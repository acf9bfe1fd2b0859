// Copyright (c) dcp authors.
//
// The MPI implementation of Communicator (and of MpiRuntime, dcp/mpi.h): the
// only code in dcp that includes <mpi.h>.
//
// Each communicator owns a private duplicate of the caller's MPI communicator
// with MPI_ERRORS_RETURN set, so dcp's traffic never matches the caller's
// messages and MPI failures come back as IOError statuses naming the call.
// Variable-length collectives exchange 64-bit sizes first; payloads larger
// than MPI's int counts are split into pieces.
//
// Thread level: MpiRuntime asks for MPI_THREAD_MULTIPLE, needed when a
// duplicated communicator runs collectives on a background thread.

#ifndef DCP_ENGINE_COORD_MPI_COMMUNICATOR_H_
#define DCP_ENGINE_COORD_MPI_COMMUNICATOR_H_

#include "dcp/mpi.h"

#endif  // DCP_ENGINE_COORD_MPI_COMMUNICATOR_H_
