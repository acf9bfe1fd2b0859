// Copyright (c) dcp authors.
//
// The put's compact exchange of declarations (docs/format.md 4.1, step 2)
// seen from the API: data-parallel replicas are declared once per distinct
// set, yet a fully parallel put still spreads their chunks over every holder,
// and a replica that differs on one rank is still named, on every rank.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;

constexpr int kRanks = 6;

// w: float32 [48, 4], whole on every rank (main on rank 0, data parallel
// replicas elsewhere). v: int32 [6, 2], two rows per "TP" position
// (rank % 3), replicated over the two "DP" groups (rank / 3).
struct RankState {
  std::vector<float> w = std::vector<float>(48 * 4);
  std::vector<int32_t> v = std::vector<int32_t>(2 * 2);
  StateDict dict;
};

void Build(int rank, RankState* s) {
  std::iota(s->w.begin(), s->w.end(), 0.5f);
  const int tp = rank % 3;
  for (int i = 0; i < 4; ++i) s->v[static_cast<size_t>(i)] = 100 * tp + i;
  ShardedTensor w = ShardedTensor::Whole("w", TensorView(s->w.data(), DType::kFloat32, {48, 4}));
  w.replica_id = {0, rank};
  ShardedTensor v;
  v.key = "v";
  v.dtype = DType::kInt32;
  v.local_shape = {2, 2};
  v.global_shape = {6, 2};
  v.global_offset = {2 * tp, 0};
  v.replica_id = {0, rank / 3};
  v.data = TensorView(s->v.data(), DType::kInt32, {2, 2});
  s->dict.Add("w", std::move(w));
  s->dict.Add("v", std::move(v));
}

TEST_CASE("data-parallel replicas: a fully parallel put spreads them over their holders", "[api][exchange]") {
  testing::TempDir dir;
  std::vector<Status> put(kRanks);
  std::vector<SaveReport> reports(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    RankState s;
    Build(rank, &s);
    auto store = Store::Open(dir.path(), comm);
    SaveOptions options;
    options.chunk_bytes = 64;  // w: 12 chunks of 4 rows; v: one 16-byte chunk per position
    options.fully_parallel = true;
    put[rank] = store.ok() ? (*store)->Put(1, s.dict, options, &reports[rank]) : store.status();
  });
  uint64_t total = 0, most = 0, least = UINT64_MAX;
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(put[r]);
    total += reports[r].raw_bytes_written;
    most = std::max(most, reports[r].raw_bytes_written);
    least = std::min(least, reports[r].raw_bytes_written);
  }
  CHECK(total == 48 * 4 * 4 + 6 * 2 * 4);  // every element written once
  CHECK(most - least <= 64);                // within one chunk: every replica took its share
  CHECK(least > 0);

  // One process loads both whole, bit-exact.
  std::vector<float> w(48 * 4, -1);
  std::vector<int32_t> v(6 * 2, -1);
  Status got;
  testing::RunRanks(1, [&](int, Communicator* comm) {
    StateDict request;
    request.Add("w", ShardedTensor::Whole("w", TensorView(w.data(), DType::kFloat32, {48, 4})));
    request.Add("v", ShardedTensor::Whole("v", TensorView(v.data(), DType::kInt32, {6, 2})));
    auto store = Store::Open(dir.path(), comm);
    got = store.ok() ? (*store)->Get(1, &request).status() : store.status();
  });
  REQUIRE_OK(got);
  std::vector<float> want_w(48 * 4);
  std::iota(want_w.begin(), want_w.end(), 0.5f);
  CHECK(w == want_w);
  for (int tp = 0; tp < 3; ++tp) {
    for (int i = 0; i < 4; ++i) CHECK(v[static_cast<size_t>(4 * tp + i)] == 100 * tp + i);
  }
}

TEST_CASE("a replica that differs on one data-parallel rank is named on every rank", "[api][exchange]") {
  testing::TempDir dir;
  std::vector<Status> put(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    RankState s;
    Build(rank, &s);
    if (rank == 4) {
      // Ranks 1, 2, 3 and 5 hold the same replicas and send them once
      // (rank 1); rank 4's differ, so it sends its own.
      ShardedTensor& w = s.dict.tensor(s.dict.Find("w"));
      w.dtype = DType::kInt32;
      w.data = TensorView(w.data.data(), DType::kInt32, {48, 4});
    }
    auto store = Store::Open(dir.path(), comm);
    put[rank] = store.ok() ? (*store)->Put(1, s.dict) : store.status();
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_THAT(put[r], StatusIs(StatusCode::kInvalidArgument,
                                  "key 'w': rank 0 declares float32 (48, 4) but rank 4 declares int32 (48, 4)"));
    CHECK(put[r] == put[0]);
  }
  Result<std::vector<uint64_t>> steps = Status::Internal("not run");
  testing::RunRanks(1, [&](int, Communicator* comm) {
    auto store = Store::Open(dir.path(), comm);
    steps = store.ok() ? (*store)->Steps() : store.status();
  });
  CHECK(ValueOrDie(std::move(steps)).empty());  // nothing committed
}

}  // namespace
}  // namespace dcp
