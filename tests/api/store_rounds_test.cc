// Copyright (c) dcp authors.
//
// How many collective rounds the Store's protocols take, counted by a
// communicator that forwards and counts (tests/testing/counting_communicator.h).
// At thousands of ranks, each round costs more than the work between them.

#include <catch2/catch.hpp>

#include <cstdio>
#include <vector>

#include "dcp/store.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/counting_communicator.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::BuildShards;
using testing::CountingCommunicator;
using testing::TensorSpec;

constexpr int kRanks = 4;

// A put is four rounds (its start all-gather carries the agreement on its
// local validation and the replica signatures); an incremental put with a
// base five: rank 0 broadcasts the base manifest instead of putting it into
// the start's all-gather, where a ring algorithm passes its many MB through
// every rank in turn ((n - 1) times its transfer time instead of about once).
TEST_CASE("a put takes at most 5 collective rounds and a get at most 3", "[api]") {
  testing::TempDir dir;
  const std::vector<TensorSpec> specs = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {2, 2}},
      {"layers.qkv", DType::kFloat32, {4, 48, 16}, 1, {4, 1, 1}},
      {"scalar", DType::kInt64, {}, 0, {}},
  };
  struct Counts {
    int put = 0, incremental_put = 0, failed_put = 0, get = 0, strict_get = 0, read_once_get = 0;
    Status status;
  };
  std::vector<Counts> counts(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* inner) {
    Counts& c = counts[static_cast<size_t>(rank)];
    CountingCommunicator comm(inner);
    auto store = Store::Open(dir.path(), &comm);
    if (!(c.status = store.status()).ok()) return;
    testing::RankShards save = BuildShards(specs, rank, kRanks, /*fill=*/true);
    save.dict.Add("iteration", Value(int64_t{1}));

    comm.Reset();
    if (!(c.status = (*store)->Put(1, save.dict)).ok()) return;
    c.put = comm.rounds();

    SaveOptions incremental;
    incremental.incremental = true;
    comm.Reset();
    if (!(c.status = (*store)->Put(2, save.dict, incremental)).ok()) return;
    c.incremental_put = comm.rounds();

    comm.Reset();  // step 2 exists: refused by rank 0, in BeginStep's round
    if ((*store)->Put(2, save.dict).ok()) {
      c.status = Status::Internal("a put over an existing step succeeded");
      return;
    }
    c.failed_put = comm.rounds();

    testing::RankShards load = BuildShards(specs, rank, kRanks, /*fill=*/false);
    comm.Reset();
    if (!(c.status = (*store)->Get(2, &load.dict).status()).ok()) return;
    c.get = comm.rounds();

    LoadOptions strict;
    strict.strict = StrictHandling::kRaiseAll;
    comm.Reset();
    if (!(c.status = (*store)->Get(2, &load.dict, strict).status()).ok()) return;
    c.strict_get = comm.rounds();

    LoadOptions read_once;
    read_once.read_once = true;
    comm.Reset();
    if (!(c.status = (*store)->Get(2, &load.dict, read_once).status()).ok()) return;
    c.read_once_get = comm.rounds();
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(counts[static_cast<size_t>(r)].status);
  }
  const Counts& c = counts[0];
  std::printf("collective rounds with %d ranks: put %d, incremental put %d, refused put %d, get %d, strict get %d, "
              "read-once get %d\n",
              kRanks, c.put, c.incremental_put, c.failed_put, c.get, c.strict_get, c.read_once_get);
  for (const Counts& other : counts) {
    CHECK(other.put == c.put);  // every rank runs the same sequence
    CHECK(other.get == c.get);
    CHECK(other.read_once_get == c.read_once_get);
  }
  CHECK(c.put <= 4);
  CHECK(c.incremental_put <= 5);  // 4 + the base manifest's broadcast
  CHECK(c.failed_put == 1);
  CHECK(c.get <= 3);
  CHECK(c.strict_get <= 5);  // the key check's gather and verdict broadcast on top
}

}  // namespace
}  // namespace dcp
