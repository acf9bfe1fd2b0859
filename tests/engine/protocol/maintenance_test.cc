// Copyright (c) dcp authors.
// Tests of engine/protocol/maintenance.cc: deletion, retention, removal and
// garbage collection over in-process ranks.

#include "engine/protocol/maintenance.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "engine/base/file.h"
#include "engine/protocol/load.h"
#include "engine/protocol/put.h"
#include "engine/store/catalog.h"
#include "engine/store/fault_rank_store.h"
#include "engine/store/key_layout.h"
#include "tests/engine/protocol/protocol_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::protocol {
namespace {

using testing::StatusIs;

constexpr int kRanks = 2;

// Steps 1..n, each written whole (not incremental: no step references another's records).
void SaveSteps(const std::string& root, int n) {
  std::vector<Status> put(kRanks);
  RunOnStore(root, kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    for (int step = 1; step <= n && put[rank].ok(); ++step) {
      RankState s = WState(rank, kRanks, /*fill=*/true);
      SaveOptions whole;
      whole.incremental = false;
      put[rank] = Put(comm, store, step, s.dict, whole, Status::OK(), nullptr);
    }
  });
  for (const Status& s : put) REQUIRE_OK(s);
}

std::vector<uint64_t> Steps(const std::string& root) {
  auto steps = storage::ListSteps(root);
  REQUIRE_OK(steps.status());
  return *steps;
}

TEST_CASE("a refusal on one rank deletes nothing; an agreed deletion removes the step", "[protocol]") {
  testing::TempDir dir;
  SaveSteps(dir.path(), 3);
  std::vector<Status> refused(kRanks), deleted(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    refused[rank] = DeleteStep(comm, store, 2, rank == 1 ? Status::FailedPrecondition("in use") : Status::OK());
    deleted[rank] = DeleteStep(comm, store, 2, Status::OK());
  });
  for (const Status& s : refused) REQUIRE_THAT(s, StatusIs(StatusCode::kFailedPrecondition, "rank 1: in use"));
  for (const Status& s : deleted) REQUIRE_OK(s);
  CHECK(Steps(dir.path()) == std::vector<uint64_t>{1, 3});
}

TEST_CASE("retention returns the same deleted steps on every rank and never deletes them all", "[protocol]") {
  testing::TempDir dir;
  SaveSteps(dir.path(), 4);
  std::vector<Result<std::vector<uint64_t>>> kept(kRanks, std::vector<uint64_t>()), all(kRanks, std::vector<uint64_t>());
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RetentionPolicy none;  // keeps nothing: refused
    all[rank] = ApplyRetention(comm, store, none, Status::OK());
    RetentionPolicy last2;
    last2.keep_last = 2;
    kept[rank] = ApplyRetention(comm, store, last2, Status::OK());
  });
  for (int r = 0; r < kRanks; ++r) {
    REQUIRE_THAT(all[r].status(), StatusIs(StatusCode::kInvalidArgument, "would delete all 4"));
    REQUIRE_OK(kept[r].status());
    CHECK(*kept[r] == std::vector<uint64_t>{1, 2});
  }
  CHECK(Steps(dir.path()) == std::vector<uint64_t>{3, 4});
}

TEST_CASE("removing tensors publishes the step without them, on every rank's word", "[protocol]") {
  testing::TempDir dir;
  SaveSteps(dir.path(), 1);
  std::vector<Result<std::vector<std::string>>> removed(kRanks, std::vector<std::string>());
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    RemoveTensorsOptions into;
    into.into_step = 2;
    removed[rank] = RemoveTensors(comm, store, 1, "w", into, Status::OK());
  });
  for (const auto& r : removed) {
    REQUIRE_OK(r.status());
    CHECK(*r == std::vector<std::string>{"w"});
  }
  CHECK(Steps(dir.path()) == std::vector<uint64_t>{1, 2});
  RunOnStore(dir.path(), 1, [&](int, Communicator*, StoreContext* store) {
    auto plain = LoadPlain(store, 2, {}, LoadOptions());
    REQUIRE_OK(plain.status());
    CHECK(plain->tensors.empty());
  });
}

TEST_CASE("garbage collection frees the records of deleted steps and keeps the others loadable", "[protocol]") {
  testing::TempDir dir;
  SaveSteps(dir.path(), 3);
  std::vector<Status> gc(kRanks);
  std::vector<GcReport> report(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    gc[rank] = DeleteStep(comm, store, 1, Status::OK());
    if (gc[rank].ok()) gc[rank] = DeleteStep(comm, store, 2, Status::OK());
    if (gc[rank].ok()) gc[rank] = CollectGarbage(comm, store, GcOptions(), Status::OK(), &report[rank]);
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(gc[r]);
    CHECK(report[r].generations_removed == 2);
    CHECK(report[r].bytes_after < report[r].bytes_before);
  }
  RunOnStore(dir.path(), 1, [&](int, Communicator*, StoreContext* store) {
    auto plain = LoadPlain(store, 3, {}, LoadOptions());
    REQUIRE_OK(plain.status());
    const PlainTensor* w = plain->FindTensor("w");
    REQUIRE(w != nullptr);
    CHECK(testing::CheckRegion("w", {4 * kRanks, 8}, Box{{0, 0}, {4 * kRanks, 8}}, w->view()).empty());
  });
}

}  // namespace
}  // namespace dcp::protocol

namespace dcp::protocol {
namespace {

TEST_CASE("records of a put that failed after one rank's ingest are reclaimed by the next collection",
          "[protocol]") {
  testing::TempDir dir;
  SaveSteps(dir.path(), 1);
  // Rank 1's store dies right after its records became durable: nothing is
  // published, and every rank's records of the put are garbage. The crash
  // is rank 1's backend's alone: over a shared one it would also fail the
  // other ranks' ingests whenever rank 1 got there first (under load, CI).
  storage::FaultBackend fault(storage::DefaultBackend());
  fault.CrashAt(storage::FaultBackend::Op::kCommit, 1, /*rank=*/1, storage::FaultBackend::When::kAfter);
  std::vector<Status> put(kRanks);
  RunOnStore(
      dir.path(), kRanks,
      [&](int rank, Communicator* comm, StoreContext* store) {
        RankState s = WState(rank, kRanks, /*fill=*/true);
        SaveOptions whole;
        whole.incremental = false;
        put[rank] = Put(comm, store, 2, s.dict, whole, Status::OK(), nullptr);
      },
      {}, [&](int rank) -> storage::RankStoreBackend* { return rank == 1 ? &fault : storage::DefaultBackend(); });
  for (const Status& s : put) REQUIRE_THAT(s, StatusIs(StatusCode::kIOError, "crashed"));
  CHECK(fault.crashed());
  CHECK(Steps(dir.path()) == std::vector<uint64_t>{1});
  // And a manifest that was being published when a writer died.
  std::ofstream(storage::ManifestTempPath(dir.path(), 7, 0x77)) << "half a manifest";

  std::vector<Status> gc(kRanks);
  std::vector<GcReport> report(kRanks);
  RunOnStore(dir.path(), kRanks, [&](int rank, Communicator* comm, StoreContext* store) {
    gc[rank] = CollectGarbage(comm, store, GcOptions(), Status::OK(), &report[rank]);
  });
  for (int r = 0; r < kRanks; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(gc[r]);
    CHECK(report[r].generations_removed == 1);
  }
  CHECK(report[0].temporary_files_removed == 1);
  CHECK_FALSE(base::PathExists(storage::ManifestTempPath(dir.path(), 7, 0x77)));
  RunOnStore(dir.path(), 1, [&](int, Communicator*, StoreContext* store) {
    auto plain = LoadPlain(store, 1, {}, LoadOptions());
    REQUIRE_OK(plain.status());
    CHECK(testing::CheckRegion("w", {4 * kRanks, 8}, Box{{0, 0}, {4 * kRanks, 8}}, plain->FindTensor("w")->view())
              .empty());
  });
}

}  // namespace
}  // namespace dcp::protocol
