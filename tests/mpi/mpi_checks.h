// Copyright (c) dcp authors.
//
// What the multi-process tests (tests/mpi) share: checks that every rank runs
// alike, with the program's exit code agreed, so a failure on one rank fails
// all of them and mpirun reports it once; and the small synthetic model they
// save.

#ifndef DCP_TESTS_MPI_MPI_CHECKS_H_
#define DCP_TESTS_MPI_MPI_CHECKS_H_

#include <cstdio>
#include <string>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/status.h"
#include "tools/synthetic/gpt_state.h"

namespace dcp::testing {

// 0 on every rank iff `ok` on every rank; rank 0 names each failing rank and
// that rank's `what`.
inline int Verdict(Communicator* comm, bool ok, const std::string& what) {
  std::vector<std::string> all;
  if (!comm->AllGather(ok ? std::string() : "!" + what, &all).ok()) return 1;
  int failed = 0;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    if (comm->rank() == 0) std::fprintf(stderr, "FAILED on rank %zu: %s\n", r, all[r].c_str() + 1);
    failed = 1;
  }
  return failed;
}

// `ok`, printing `what` on this rank when it is false.
inline bool Check(bool ok, const std::string& what) {
  if (!ok) std::fprintf(stderr, "check failed: %s\n", what.c_str());
  return ok;
}

// True if every rank holds the same status text and it is an error that
// contains every fragment.
inline bool SameErrorEverywhere(Communicator* comm, const Status& s, const std::vector<std::string>& fragments) {
  std::vector<std::string> all;
  if (!comm->AllGather(s.ToString(), &all).ok()) return false;
  for (const std::string& a : all) {
    if (a != all[0]) {
      std::fprintf(stderr, "rank %d: statuses differ: '%s' vs '%s'\n", comm->rank(), a.c_str(), all[0].c_str());
      return false;
    }
  }
  if (s.ok()) {
    std::fprintf(stderr, "rank %d: succeeded where an error was expected\n", comm->rank());
    return false;
  }
  for (const std::string& f : fragments) {
    if (s.ToString().find(f) == std::string::npos) {
      std::fprintf(stderr, "rank %d: unexpected status '%s' (wanted '%s')\n", comm->rank(), s.ToString().c_str(),
                   f.c_str());
      return false;
    }
  }
  return true;
}

// The GPT-like model of the mpi tests: small enough for 8 oversubscribed
// ranks, large enough for several chunks per shard.
inline synthetic::GptConfig SmallGptConfig() {
  synthetic::GptConfig c;
  c.vocab = 512;
  c.hidden = 64;
  c.layers = 4;
  c.ffn = 256;
  return c;
}

}  // namespace dcp::testing

#endif  // DCP_TESTS_MPI_MPI_CHECKS_H_
