// Copyright (c) dcp authors.
//
// PutAsync / WaitForPut / PollPut on in-process ranks.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "dcp/store.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;
using testing::TensorSpec;

const std::vector<TensorSpec> kSpecs = {{"w", DType::kFloat32, {64, 32}, 0, {2, 1}},
                                        {"b", DType::kBFloat16, {6, 4}, 0, {1, 2}},
                                        {"r", DType::kInt64, {5}, 0, {1}}};  // replicated on rank 1

// Catch2 assertions are not thread-safe: rank threads throw instead (RunRanks
// rethrows on the test's thread).
std::unique_ptr<Store> OpenOrThrow(const std::string& root, Communicator* comm) {
  auto store = Store::Open(root, comm);
  if (!store.ok()) throw std::runtime_error(store.status().ToString());
  return std::move(store).value();
}

void OkOrThrow(const Status& s) {
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

// Overwrites every buffer of `shards` with garbage.
void Scribble(testing::RankShards* shards) {
  for (auto& b : shards->buffers) std::memset(b.bytes().data(), 0x5a, b.bytes().size());
}

TEST_CASE("the caller may change its tensors as soon as PutAsync returns", "[api][async]") {
  testing::TempDir dir;
  std::vector<Status> started(2), finished(2);
  std::vector<SaveReport> reports(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kSpecs, rank, 2, true);
    shards.dict.Add("iteration", Value(int64_t{9}));
    auto store = OpenOrThrow(dir.path(), comm);
    started[rank] = store->PutAsync(9, shards.dict);
    Scribble(&shards);  // the training step goes on
    finished[rank] = store->WaitForPut(&reports[rank]);
  });
  for (int r = 0; r < 2; ++r) {
    REQUIRE_OK(started[r]);
    REQUIRE_OK(finished[r]);
  }
  CHECK(reports[0].chunks_written + reports[1].chunks_written >= 3);
  std::string why;
  const auto loaded = testing::LoadAll(dir.path(), 9, 3, kSpecs);
  INFO(why);
  REQUIRE(testing::AllOk(loaded, &why));
  CHECK(loaded.common[0].Find("iteration")->as_int() == 9);
}

TEST_CASE("a second async put while one is in flight is refused on every rank", "[api][async]") {
  testing::TempDir dir;
  std::vector<Status> none(2), second(2), put(2), first(2), third(2);
  std::vector<SaveReport> first_report(2), third_report(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kSpecs, rank, 2, true);
    auto store = OpenOrThrow(dir.path(), comm);
    none[rank] = store->WaitForPut();
    OkOrThrow(store->PutAsync(1, shards.dict));
    second[rank] = store->PutAsync(2, shards.dict);
    put[rank] = store->Put(2, shards.dict);
    first[rank] = store->WaitForPut(&first_report[rank]);
    third[rank] = store->WaitForPut(&third_report[rank]);  // collected already: the same outcome again
  });
  for (int r = 0; r < 2; ++r) {
    REQUIRE_THAT(none[r], StatusIs(StatusCode::kFailedPrecondition, "no async put to wait for"));
    REQUIRE_THAT(second[r], StatusIs(StatusCode::kFailedPrecondition, "an async put of step 1 has not been collected"));
    REQUIRE_THAT(put[r], StatusIs(StatusCode::kFailedPrecondition, "an async put of step 1 has not been collected"));
    REQUIRE_OK(first[r]);
    REQUIRE_OK(third[r]);
    CHECK(third_report[r].chunks_written == first_report[r].chunks_written);
    CHECK(third_report[r].stored_bytes_written == first_report[r].stored_bytes_written);
    CHECK(first_report[r].chunks_written > 0);
  }
  std::string why;
  REQUIRE(testing::AllOk(testing::LoadAll(dir.path(), 1, 1, {{"w", DType::kFloat32, {64, 32}, 0, {1, 1}}}), &why));
}

TEST_CASE("a failing async put reports the same error everywhere and commits nothing", "[api][async]") {
  testing::TempDir dir;
  std::string why;
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 1, 2, kSpecs), &why));
  std::vector<Status> started(2), finished(2), local(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(kSpecs, rank, 2, true);
    auto store = OpenOrThrow(dir.path(), comm);
    // Global problem (found in the background): overlapping main replicas.
    if (rank == 1) shards.dict.dict(shards.dict.Find("model")).tensor(0).global_offset = {0, 0};
    started[rank] = store->PutAsync(2, shards.dict);
    finished[rank] = store->WaitForPut();
    // Local problem (found before anything starts): a view/declaration mismatch.
    auto bad = testing::BuildShards(kSpecs, rank, 2, true);
    if (rank == 0) bad.dict.dict(bad.dict.Find("model")).tensor(0).dtype = DType::kInt32;
    local[rank] = store->PutAsync(3, bad.dict);
  });
  for (int r = 0; r < 2; ++r) {
    REQUIRE_OK(started[r]);
    REQUIRE_THAT(finished[r], StatusIs(StatusCode::kInvalidArgument, "key 'w': main replicas on ranks 0 and 1 overlap"));
    CHECK(finished[r] == finished[0]);
    REQUIRE_THAT(local[r], StatusIs(StatusCode::kInvalidArgument, "rank 0: "));
    CHECK(local[r] == local[0]);
  }
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1});
  REQUIRE(testing::AllOk(testing::LoadAll(dir.path(), 1, 2, kSpecs), &why));
}

TEST_CASE("PollPut reports progress; loads run while an async put is in flight", "[api][async]") {
  testing::TempDir dir;
  std::string why;
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 1, 1, kSpecs), &why));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  REQUIRE_THAT(store->PollPut().value(), StatusIs(StatusCode::kFailedPrecondition, "no async put to poll"));
  auto shards = testing::BuildShards(kSpecs, 0, 1, true);
  REQUIRE_OK(store->PutAsync(2, shards.dict));
  // A load of the committed step meanwhile.
  auto req = testing::BuildShards(kSpecs, 0, 1, false);
  REQUIRE_OK(store->Get(1, &req.dict).status());
  std::optional<Status> outcome;
  for (int i = 0; i < 2000 && !(outcome = store->PollPut()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(outcome.has_value());
  REQUIRE_OK(*outcome);
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1, 2});
}

TEST_CASE("destroying a store waits for its async put", "[api][async]") {
  testing::TempDir dir;
  {
    auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
    auto shards = testing::BuildShards(kSpecs, 0, 1, true);
    REQUIRE_OK(store->PutAsync(4, shards.dict));
  }
  std::string why;
  REQUIRE(testing::AllOk(testing::LoadAll(dir.path(), 4, 2, kSpecs), &why));
}

}  // namespace
}  // namespace dcp
