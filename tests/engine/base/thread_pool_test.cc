// Copyright (c) dcp authors.

#include "engine/base/thread_pool.h"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dcp::base {
namespace {

TEST_CASE("TaskGroup runs every task and keeps the first error", "[base]") {
  ThreadPool pool(3);
  CHECK(pool.size() == 3);
  std::atomic<int> ran{0};
  TaskGroup group(&pool);
  for (int i = 0; i < 100; ++i) {
    group.Run([&, i] {
      ++ran;
      return i == 42 ? Status::DataLoss("task 42") : Status::OK();
    });
  }
  const Status s = group.Wait();
  CHECK(ran == 100);
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK(s.message() == "task 42");
  CHECK(group.failed());
}

TEST_CASE("ByteBudget bounds bytes in flight and admits an oversized request alone", "[base]") {
  ThreadPool pool(4);
  ByteBudget budget(100);
  std::atomic<int64_t> in_flight{0}, peak{0};
  TaskGroup group(&pool);
  for (int i = 0; i < 50; ++i) {
    const uint64_t n = i == 7 ? 250 : 30;  // one request larger than the limit
    budget.Acquire(n);
    const int64_t now = in_flight += static_cast<int64_t>(n);
    int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    group.Run([&, n] {
      in_flight -= static_cast<int64_t>(n);
      budget.Release(n);
      return Status::OK();
    });
  }
  REQUIRE(group.Wait().ok());
  CHECK(peak <= 250);
}

// The launchers' variables ResolveThreadCount reads, unset for a case and
// put back after it.
class LauncherEnv {
 public:
  LauncherEnv() {
    for (const char* var : kVars) {
      const char* v = std::getenv(var);
      saved_.emplace_back(var, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(var);
    }
  }
  ~LauncherEnv() {
    for (const auto& [var, v] : saved_) {
      if (v) ::setenv(var, v->c_str(), 1);
      else ::unsetenv(var);
    }
  }

 private:
  static constexpr const char* kVars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "LOCAL_WORLD_SIZE",
                                          "SLURM_NTASKS_PER_NODE"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

TEST_CASE("ResolveThreadCount shares the host's cores among its ranks", "[base]") {
  LauncherEnv env;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(ResolveThreadCount(5) == 5);
  CHECK(ResolveThreadCount(5, 64) == 5);  // asked for: as asked
  CHECK(ResolveThreadCount(0) == std::max(2, cores));
  // Ranks counted by the caller (a store, over its communicator), as under
  // torch.multiprocessing, where no launcher says how many share the host.
  CHECK(ResolveThreadCount(0, 4) == std::max(2, cores / 4));
  CHECK(ResolveThreadCount(0, 0) == std::max(2, cores));
  // A launcher's count, and the larger of the two.
  ::setenv("LOCAL_WORLD_SIZE", "3", 1);
  CHECK(ResolveThreadCount(0) == std::max(2, cores / 3));
  CHECK(ResolveThreadCount(0, 8) == std::max(2, cores / 8));
  ::setenv("LOCAL_WORLD_SIZE", "junk", 1);
  CHECK(ResolveThreadCount(0, 1) == std::max(2, cores));
}

TEST_CASE("HostIdentity names this machine, the same every time", "[base]") {
  const std::string id = HostIdentity();
  CHECK(id.size() > 5);
  CHECK(HostIdentity() == id);
}

}  // namespace
}  // namespace dcp::base
