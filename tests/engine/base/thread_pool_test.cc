// Copyright (c) dcp authors.

#include "engine/base/thread_pool.h"

#include <catch2/catch.hpp>

#include <atomic>

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
  CHECK(ResolveThreadCount(0) >= 2);
  CHECK(ResolveThreadCount(5) == 5);
}

}  // namespace
}  // namespace dcp::base
