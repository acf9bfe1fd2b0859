// Copyright (c) dcp authors.
// Tests of api/src/log.cc: dcp's messages reach the application's sink.

#include "dcp/log.h"

#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

struct Captured {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;
};

TEST_CASE("an installed sink receives dcp's warnings; an empty one restores stderr", "[api]") {
  Captured captured;
  SetLogSink([&](LogLevel level, std::string_view message) {
    std::lock_guard<std::mutex> lock(captured.mu);
    captured.lines.emplace_back(level, std::string(message));
  });
  testing::TempDir dir;
  // Two ranks save different common state: rank 0's is kept, with a warning.
  std::vector<Status> put(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto store = Store::Open(dir.path(), comm);
    if (!(put[static_cast<size_t>(rank)] = store.status()).ok()) return;
    StateDict state;
    state.Add("iteration", Value(static_cast<int64_t>(rank)));
    put[static_cast<size_t>(rank)] = (*store)->Put(1, state);
  });
  SetLogSink(nullptr);
  REQUIRE_OK(put[0]);
  REQUIRE_OK(put[1]);
  REQUIRE(captured.lines.size() == 1);
  CHECK(captured.lines[0].first == LogLevel::kWarning);
  CHECK(captured.lines[0].second ==
        "put of step 1: common state of rank 1 differs from rank 0's; rank 0's copy is saved");
  Log(LogLevel::kInfo, "to stderr again");  // the default sink; not captured
  CHECK(captured.lines.size() == 1);
}

}  // namespace
}  // namespace dcp
