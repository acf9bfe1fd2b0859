// Copyright (c) dcp authors.
//
// Communicator: the collective operations dcp needs, over bytes.
//
// A Store runs its collective protocol (validate, write, commit; read, agree)
// over a Communicator. Two implementations ship: MPI (dcp/mpi.h; the same
// binary under mpirun on one box or many) and in-process groups of N threads
// acting as N ranks (for tests), plus a single-rank "self" communicator.
//
// Collective methods must be called by every rank of the group, in the same
// order. A non-OK status from a collective means the group itself failed
// (e.g. an MPI error); dcp's own errors are agreed on with ordinary
// collectives and never leave a rank waiting.
//
// Thread safety: one thread at a time may issue collectives on a given
// Communicator. Use Duplicate() for a second, independent channel (e.g. a
// background commit) that may run concurrently with the first.

#ifndef DCP_COMMUNICATOR_H_
#define DCP_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"

namespace dcp {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Collective. Returns once every rank has entered.
  virtual Status Barrier() = 0;
  // Collective. `*bytes` on `root` is sent; on the other ranks it is replaced.
  virtual Status Broadcast(int root, std::string* bytes) = 0;
  // Collective. (*all)[r] receives rank r's `local`.
  virtual Status AllGather(std::string_view local, std::vector<std::string>* all) = 0;
  // Collective. On `root`, (*all)[r] receives rank r's `local`; elsewhere *all
  // is cleared.
  virtual Status Gather(int root, std::string_view local, std::vector<std::string>* all) = 0;
  // Collective. send[r] goes to rank r; (*recv)[r] receives what rank r sent.
  // REQUIRES: send.size() == size().
  virtual Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) = 0;

  // Collective. A new communicator over the same ranks whose traffic never
  // mixes with this one's.
  virtual Result<std::unique_ptr<Communicator>> Duplicate() = 0;

  // True if a duplicate may run collectives on another thread while this
  // communicator (or the application's own use of the same library) runs
  // collectives on the caller's thread. MPI: only under MPI_THREAD_MULTIPLE.
  virtual bool SupportsConcurrentDuplicates() const { return true; }
};

// A group of one: rank 0 of size 1.
std::unique_ptr<Communicator> NewSelfCommunicator();

// An in-process group of `n` ranks: element r is rank r. Each must be driven
// by its own thread (collectives block until all n have entered).
// REQUIRES: n >= 1.
std::vector<std::unique_ptr<Communicator>> NewLocalCommunicators(int n);

}  // namespace dcp

#endif  // DCP_COMMUNICATOR_H_
