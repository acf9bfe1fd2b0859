// Copyright (c) dcp authors.
//
// MPI support without MPI headers: an RAII runtime guard and communicator
// factories. Include <mpi.h> yourself only if you need MPI directly.
//
// dcp asks for MPI_THREAD_MULTIPLE so that a duplicated communicator may run
// collectives from a background thread while the caller's thread runs its
// own (see Communicator::Duplicate); ProvidedThreadLevel() tells what the MPI
// library granted.

#ifndef DCP_MPI_H_
#define DCP_MPI_H_

#include <cstdint>
#include <memory>

#include "dcp/communicator.h"
#include "dcp/status.h"

namespace dcp {

// Initializes MPI on construction (unless already initialized) and finalizes
// it on destruction (only if this guard initialized it).
class MpiRuntime {
 public:
  // Returns IOError if MPI_Init_thread fails.
  static Result<std::unique_ptr<MpiRuntime>> Init(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // MPI_THREAD_SINGLE = 0 ... MPI_THREAD_MULTIPLE = 3.
  int ProvidedThreadLevel() const { return provided_; }

 private:
  MpiRuntime(bool owns, int provided) : owns_(owns), provided_(provided) {}
  bool owns_;
  int provided_;
};

// A communicator over a private duplicate of MPI_COMM_WORLD.
// REQUIRES: MPI is initialized.
Result<std::unique_ptr<Communicator>> NewMpiWorldCommunicator();

// A communicator over a private duplicate of the communicator whose Fortran
// handle is `fortran_handle` (from MPI_Comm_c2f), so callers can pass their own
// sub-communicators without dcp's headers needing <mpi.h>.
Result<std::unique_ptr<Communicator>> NewMpiCommunicatorFromFortranHandle(int64_t fortran_handle);

}  // namespace dcp

#endif  // DCP_MPI_H_
