// Copyright (c) dcp authors.
//
// RunRanks(n, fn): runs fn(rank, comm) on n threads, each holding rank r of an
// in-process communicator group, and waits for all. Exceptions (including
// Catch2 assertion failures) on any rank are rethrown on the calling thread.
// Catch2 assertions are not thread-safe: rank bodies return values (e.g.
// statuses) that the test asserts on after RunRanks returns.

#ifndef DCP_TESTS_TESTING_RANK_RUNNER_H_
#define DCP_TESTS_TESTING_RANK_RUNNER_H_

#include <functional>

#include "dcp/communicator.h"

namespace dcp::testing {

void RunRanks(int n, const std::function<void(int rank, Communicator* comm)>& fn);

}  // namespace dcp::testing

#endif  // DCP_TESTS_TESTING_RANK_RUNNER_H_
