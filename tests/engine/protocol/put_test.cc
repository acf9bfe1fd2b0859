// Copyright (c) dcp authors.
// Tests of engine/protocol/put.cc: the write session over in-process ranks.

#include "engine/protocol/put.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/protocol/load.h"
#include "engine/store/catalog.h"
#include "engine/store/fault_rank_store.h"
#include "tests/engine/protocol/protocol_fixture.h"
#include "tests/testing/counting_communicator.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

using testing::StatusIs;

constexpr int kRanks = 3;

TEST_CASE("a put writes every rank's slabs and a plain load reassembles them", "[protocol]") {
  testing::TempDir dir;
  std::vector<Status> put(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, kRanks, /*fill=*/true);
    put[rank] = Put(comm, store, 5, s.dict, SaveOptions(), Status::OK(), nullptr);
  });
  for (const Status& s : put) REQUIRE_OK(s);

  StoreOptions read_only;
  read_only.read_only = true;
  RunOnStore(
      dir.path(), 1,
      [&](int, Communicator*, StoreContext* store) {
        auto plain = LoadPlain(store, 5, {}, LoadOptions());
        REQUIRE_OK(plain.status());
        const PlainTensor* w = plain->FindTensor("w");
        REQUIRE(w != nullptr);
        CHECK(testing::CheckRegion("w", {4 * kRanks, 8}, Box{{0, 0}, {4 * kRanks, 8}}, w->view()).empty());
        CHECK(plain->common_state.Find("iteration") != nullptr);
      },
      read_only);
}

TEST_CASE("a caller's refusal on one rank refuses the put on every rank and writes nothing", "[protocol]") {
  testing::TempDir dir;
  std::vector<Status> put(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RankState s = WState(rank, kRanks, /*fill=*/true);
    const Status local = rank == 1 ? Status::FailedPrecondition("busy here") : Status::OK();
    put[rank] = Put(comm, store, 5, s.dict, SaveOptions(), local, nullptr);
  });
  for (const Status& s : put) REQUIRE_THAT(s, StatusIs(StatusCode::kFailedPrecondition, "rank 1: busy here"));
  auto steps = storage::ListSteps(dir.path());
  REQUIRE_OK(steps.status());
  CHECK(steps->empty());
}

// Put's start all-gather carries every rank's local validation (step A) too;
// the start's own checks still win, as when A had a round of its own.
TEST_CASE("a put's local validation rides on its start round, after the start's own checks", "[protocol]") {
  testing::TempDir dir;
  std::vector<Status> first(kRanks), both(kRanks), invalid(kRanks);
  std::vector<int> rounds(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* inner, StoreContext* store) {
    testing::CountingCommunicator comm(inner);
    RankState s = WState(rank, kRanks, /*fill=*/true);
    first[rank] = Put(&comm, store, 5, s.dict, SaveOptions(), Status::OK(), nullptr);
    if (rank == 2) s.dict.Add("iteration", Value(int64_t{8}));  // a duplicate key: step A fails on rank 2
    // Step 5 exists (rank 0's start check) and rank 2's state is invalid.
    both[rank] = Put(&comm, store, 5, s.dict, SaveOptions(), Status::OK(), nullptr);
    comm.Reset();
    invalid[rank] = Put(&comm, store, 6, s.dict, SaveOptions(), Status::OK(), nullptr);
    rounds[rank] = comm.rounds();
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(first[r]);
    CHECK_THAT(both[r], StatusIs(StatusCode::kAlreadyExists, "step 5 already exists"));
    CHECK(both[r].message().find("ranks failed") == std::string::npos);
    CHECK_THAT(invalid[r],
               StatusIs(StatusCode::kInvalidArgument, "put of step 6: rank 2: duplicate state dict key 'iteration'"));
    CHECK(rounds[r] == 2);  // refused after the start round (and the base manifest's broadcast), nothing written
  }
  CHECK_FALSE(storage::StepExists(dir.path(), 6));
}

TEST_CASE("a part on a rank without the session fails on every rank, and the session goes on", "[protocol]") {
  testing::TempDir dir;
  std::vector<Status> part(kRanks), commit(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    auto session = BeginStep(comm, store, 9, SaveOptions(), Status::OK(), "BeginStep");
    if (!session.ok()) {
      part[rank] = session.status();
      return;
    }
    RankState s = WState(rank, kRanks, /*fill=*/true);
    part[rank] = WritePart(comm, store, rank == 2 ? nullptr : session->get(), s.dict, Status::OK(), nullptr, nullptr);
    // The refused part changed nothing: the same part again, then the commit.
    if (WritePart(comm, store, session->get(), s.dict, Status::OK(), nullptr, nullptr).ok()) {
      commit[rank] = Commit(store, std::move(session).value(), Status::OK(), nullptr);
    } else {
      commit[rank] = Status::Internal("the second part failed");
    }
  });
  for (const Status& s : part) REQUIRE_THAT(s, StatusIs(StatusCode::kFailedPrecondition, "rank 2: no write session"));
  for (const Status& s : commit) REQUIRE_OK(s);
  CHECK(storage::StepExists(dir.path(), 9));
}

TEST_CASE("an incremental put gets rank 0's base on every rank and references what did not change",
          "[protocol]") {
  testing::TempDir dir;
  std::vector<SaveReport> first(kRanks), second(kRanks);
  std::vector<int> rounds(kRanks);
  std::vector<Status> status(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* inner, StoreContext* store) {
    testing::CountingCommunicator comm(inner);
    RankState s = WState(rank, kRanks, /*fill=*/true);
    SaveOptions incremental;
    incremental.incremental = true;
    status[rank] = Put(&comm, store, 1, s.dict, incremental, Status::OK(), &first[rank]);
    comm.Reset();
    if (status[rank].ok()) status[rank] = Put(&comm, store, 2, s.dict, incremental, Status::OK(), &second[rank]);
    rounds[rank] = comm.rounds();
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(status[r]);
    CHECK(first[r].chunks_written > 0);
    CHECK(first[r].chunks_referenced == 0);
    CHECK(second[r].chunks_written == 0);
    CHECK(second[r].chunks_referenced == first[r].chunks_written);
    CHECK(rounds[r] == 5);  // 4, and the base manifest's broadcast
  }
}

}  // namespace
}  // namespace dcp::protocol

namespace dcp::protocol {
namespace {

TEST_CASE("a failed ingest breaks the session: later parts and the commit are refused; the next put works",
          "[protocol]") {
  testing::TempDir dir;
  storage::FaultBackend fault(storage::DefaultBackend());
  fault.FailAt(storage::FaultBackend::Op::kCommit, /*nth=*/1, /*rank=*/1);
  std::vector<Status> part(kRanks), again(kRanks), commit(kRanks), next(kRanks);
  RunOnStore(
      dir.path(), kRanks,
      [&](int rank, Communicator* comm, StoreContext* store) {
        RankState s = WState(rank, kRanks, /*fill=*/true);
        auto session = BeginStep(comm, store, 2, SaveOptions(), Status::OK(), "BeginStep");
        if (!session.ok()) {
          part[rank] = session.status();
          return;
        }
        part[rank] = WritePart(comm, store, session->get(), s.dict, Status::OK(), nullptr, nullptr);
        again[rank] = WritePart(comm, store, session->get(), s.dict, Status::OK(), nullptr, nullptr);
        session->reset();  // aborted: its records are garbage
        next[rank] = Put(comm, store, 3, s.dict, SaveOptions(), Status::OK(), nullptr);
      },
      {}, [&](int) { return &fault; });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_THAT(part[r], StatusIs(StatusCode::kIOError, "rank 1: "));
    REQUIRE_THAT(part[r], StatusIs(StatusCode::kIOError, "fault backend"));
    REQUIRE_THAT(again[r], StatusIs(StatusCode::kFailedPrecondition, "the write session failed"));
    REQUIRE_OK(next[r]);
  }
  CHECK(fault.calls(storage::FaultBackend::Op::kCommit) == 2 * kRanks);  // step 2's first part, step 3
  auto steps = storage::ListSteps(dir.path());
  REQUIRE_OK(steps.status());
  CHECK(*steps == std::vector<uint64_t>{3});
}

}  // namespace
}  // namespace dcp::protocol
