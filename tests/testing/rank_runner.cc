// Copyright (c) dcp authors.

#include "tests/testing/rank_runner.h"

#include <exception>
#include <thread>
#include <vector>

namespace dcp::testing {

void RunRanks(int n, const std::function<void(int rank, Communicator* comm)>& fn) {
  auto comms = NewLocalCommunicators(n);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(r, comms[static_cast<size_t>(r)].get());
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace dcp::testing
