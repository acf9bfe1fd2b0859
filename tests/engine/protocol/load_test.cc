// Copyright (c) dcp authors.
// Tests of engine/protocol/load.cc: the collective get and the local reads.

#include "engine/protocol/load.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/protocol/put.h"
#include "engine/store/fault_rank_store.h"
#include "tests/engine/protocol/protocol_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

using testing::StatusIs;

constexpr int kRanks = 3;

void SaveStep(const std::string& root, uint64_t step) {
  std::vector<Status> put(kRanks);
  RunOnStore(root, kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, kRanks, /*fill=*/true);
    put[rank] = Put(comm, store, step, s.dict, SaveOptions(), Status::OK(), nullptr);
  });
  for (const Status& s : put) REQUIRE_OK(s);
}

TEST_CASE("a get in another layout reads exactly each rank's rows", "[protocol]") {
  testing::TempDir dir;
  SaveStep(dir.path(), 3);
  // Two ranks now, 6 rows each, of the 12 rows three ranks saved.
  std::vector<Status> got(2);
  std::vector<std::string> check(2);
  std::vector<int64_t> iteration(2);
  RunOnStore(dir.path(), 2, [&](int rank, Communicator* comm, StoreContext* store) {
    testing::HostTensor buf(DType::kFloat32, {6, 8});
    ShardedTensor t;
    t.key = "w";
    t.data = buf.view();
    t.dtype = DType::kFloat32;
    t.local_shape = {6, 8};
    t.global_shape = {4 * kRanks, 8};
    t.global_offset = {6 * rank, 0};
    StateDict request;
    request.Add("w", t);
    auto result = Get(comm, store, 3, &request, LoadOptions(), Status::OK());
    got[rank] = result.status();
    if (!result.ok()) return;
    check[rank] = testing::CheckRegion("w", {4 * kRanks, 8}, Box{{6 * rank, 0}, {6, 8}}, buf.view());
    const Value* it = result->common_state.Find("iteration");
    iteration[rank] = it != nullptr ? it->as_int() : -1;
  });
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(got[r]);
    CHECK(check[r].empty());
    CHECK(iteration[r] == 7);
  }
}

TEST_CASE("a caller's failure on one rank fails the get on every rank", "[protocol]") {
  testing::TempDir dir;
  SaveStep(dir.path(), 3);
  std::vector<Status> got(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, kRanks, /*fill=*/false);
    const Status local = rank == 2 ? Status::InvalidArgument("cannot convert entry 'x'") : Status::OK();
    got[rank] = Get(comm, store, 3, &s.dict, LoadOptions(), local).status();
  });
  for (const Status& s : got) {
    REQUIRE_THAT(s, StatusIs(StatusCode::kInvalidArgument, "rank 2: cannot convert entry 'x'"));
  }
}

TEST_CASE("a get of a step that is not there is NotFound on every rank", "[protocol]") {
  testing::TempDir dir;
  SaveStep(dir.path(), 3);
  std::vector<Status> got(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, kRanks, /*fill=*/false);
    got[rank] = Get(comm, store, 4, &s.dict, LoadOptions(), Status::OK()).status();
  });
  for (const Status& s : got) REQUIRE_THAT(s, StatusIs(StatusCode::kNotFound, "4"));
}

TEST_CASE("Read fetches one region on one process; a bad region is refused", "[protocol]") {
  testing::TempDir dir;
  SaveStep(dir.path(), 3);
  RunOnStore(dir.path(), 1, [&](int, Communicator*, StoreContext* store) {
    testing::HostTensor buf(DType::kFloat32, {3, 4});
    const Box region{{5, 2}, {3, 4}};  // across the slabs of ranks 1 and 2
    REQUIRE_OK(Read(store, 3, "w", region, buf.view(), LoadOptions()));
    CHECK(testing::CheckRegion("w", {4 * kRanks, 8}, region, buf.view()).empty());
    CHECK_THAT(Read(store, 3, "nope", region, buf.view(), LoadOptions()),
               StatusIs(StatusCode::kNotFound, "tensor 'nope' is not in step 3"));
    CHECK_THAT(Read(store, 3, "w", Box{{0}, {3, 4}}, buf.view(), LoadOptions()),
               StatusIs(StatusCode::kInvalidArgument, "different ranks"));
  });
}

}  // namespace
}  // namespace dcp::protocol

namespace dcp::protocol {
namespace {

TEST_CASE("read-once: a read failure on one rank fails every rank, naming it; the next load works", "[protocol]") {
  testing::TempDir dir;
  std::vector<Status> put(2);
  RunOnStore(dir.path(), 2, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, 2, /*fill=*/true);
    SaveOptions small;
    small.chunk_bytes = 32;  // one row per chunk
    put[rank] = Put(comm, store, 1, s.dict, small, Status::OK(), nullptr);
  });
  for (const Status& s : put) REQUIRE_OK(s);
  // Four ranks load the whole tensor (every chunk wanted by all: the
  // read-once exchange); rank 2's reads fail.
  storage::FaultBackend fault(storage::DefaultBackend());
  fault.FailAt(storage::FaultBackend::Op::kGet, 1, -1, storage::FaultBackend::kForever);
  LoadOptions options;
  options.read_once = true;
  options.max_inflight_bytes = 128;
  auto load_all = [&](bool inject) {
    std::vector<Status> got(4);
    std::vector<std::string> check(4);
    RunOnStore(
        dir.path(), 4,
        [&](int rank, Communicator* comm, StoreContext* store) {
          testing::HostTensor buf(DType::kFloat32, {8, 8});
          ShardedTensor t;
          t.key = "w";
          t.data = buf.view();
          t.dtype = DType::kFloat32;
          t.local_shape = {8, 8};
          t.global_shape = {8, 8};
          t.global_offset = {0, 0};
          t.replica_id = {rank};
          StateDict request;
          request.Add("w", t);
          got[rank] = Get(comm, store, 1, &request, options, Status::OK()).status();
          if (got[rank].ok()) check[rank] = testing::CheckRegion("w", {8, 8}, Box{{0, 0}, {8, 8}}, buf.view());
        },
        {}, [&](int rank) { return inject && rank == 2 ? &fault : storage::DefaultBackend(); });
    return std::make_pair(got, check);
  };
  const auto [failed, unused] = load_all(true);
  for (const Status& s : failed) {
    REQUIRE_THAT(s, StatusIs(StatusCode::kIOError, "get of step 1: rank 2: "));
    REQUIRE_THAT(s, StatusIs(StatusCode::kIOError, "fault backend"));
    CHECK(s == failed[0]);
  }
  CHECK(fault.calls(storage::FaultBackend::Op::kGet) > 0);
  const auto [ok, check] = load_all(false);
  for (int r = 0; r < 4; ++r) {
    REQUIRE_OK(ok[r]);
    CHECK(check[r].empty());
  }
}

}  // namespace
}  // namespace dcp::protocol
