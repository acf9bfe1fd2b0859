// Copyright (c) dcp authors.
//
// The store as a database: incremental steps, streaming writes, deleting
// steps, retention, garbage collection, the writer lock, concurrent readers.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>
#include <utility>

#include "dcp/store.h"
#include "engine/base/fault_injection.h"
#include "engine/store/key_layout.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;

// One rank's weights: `n` chunks of `rows` x 256 float32 rows each; chunk i
// holds value (seed + i) unless `changed` says otherwise.
struct Weights {
  Weights(int64_t chunks, int64_t rows) : rows(rows), data(static_cast<size_t>(chunks * rows * 256), 0.0f) {}
  void Fill(float seed) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = seed + static_cast<float>(i / static_cast<size_t>(rows * 256));
  }
  void Change(int64_t chunk, float v) {
    std::fill_n(data.begin() + chunk * rows * 256, rows * 256, v);
  }
  StateDict Dict() {
    StateDict sd;
    sd.Add("w", ShardedTensor::Whole("w", TensorView(data.data(), DType::kFloat32,
                                                      {static_cast<int64_t>(data.size()) / 256, 256})));
    return sd;
  }
  int64_t rows;
  std::vector<float> data;
};

SaveOptions SmallChunks(int64_t rows) {
  SaveOptions o;
  o.chunk_bytes = static_cast<uint64_t>(rows) * 256 * 4;  // one chunk per block of rows
  o.compression = Compression::kNone;                      // sizes as written
  return o;
}

std::unique_ptr<Store> Reader(const std::string& root) {
  return ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
}

std::vector<float> LoadW(const std::string& root, uint64_t step, size_t n) {
  std::vector<float> out(n, -1.0f);
  auto store = Reader(root);
  REQUIRE_OK(store->Read(step, "w", Box{{0, 0}, {static_cast<int64_t>(n) / 256, 256}},
                         TensorView(out.data(), DType::kFloat32, {static_cast<int64_t>(n) / 256, 256})));
  return out;
}

TEST_CASE("an incremental step writes only the chunks that changed", "[api][lifecycle]") {
  testing::TempDir dir;
  Weights w(20, 16);
  w.Fill(1.0f);
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  SaveReport full, inc, same;
  StateDict sd = w.Dict();
  sd.Add("rng", ShardedObject{"rng", "state", {1}, {0}, {}});
  REQUIRE_OK(store->Put(1, sd, SmallChunks(16), &full));
  CHECK(full.chunks_written == 20);
  CHECK(full.chunks_referenced == 0);
  w.Change(3, 7.0f);
  w.Change(11, 8.0f);  // 2 of 20 chunks change (10%)
  REQUIRE_OK(store->Put(2, sd, SmallChunks(16), &inc));
  CHECK(inc.chunks_written == 2);
  CHECK(inc.chunks_referenced == 18 + 1);  // and the unchanged object
  CHECK(inc.raw_bytes_written == full.raw_bytes_written / 10);
  REQUIRE_OK(store->Put(3, sd, SmallChunks(16), &same));  // a frozen model: nothing to write
  CHECK(same.chunks_written == 0);
  CHECK(same.stored_bytes_written == 0);
  // Turned off, everything is written again.
  SaveOptions no_inc = SmallChunks(16);
  no_inc.incremental = false;
  SaveReport again;
  REQUIRE_OK(store->Put(4, sd, no_inc, &again));
  CHECK(again.chunks_written == 20);

  const StepMetadata m2 = ValueOrDie(store->Metadata(2));
  CHECK(m2.info.unique_bytes * 5 < m2.info.stored_bytes);
  CHECK(ValueOrDie(store->Metadata(3)).info.unique_bytes == 0);
  CHECK(LoadW(dir.path(), 2, w.data.size()) == w.data);
  w.Fill(1.0f);
  CHECK(LoadW(dir.path(), 1, w.data.size()) == w.data);
}

TEST_CASE("a step arrives in parts and commits once", "[api][lifecycle]") {
  testing::TempDir dir;
  std::vector<Status> s(2 * 8);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto store = Store::Open(dir.path(), comm);
    if (!store.ok()) throw std::runtime_error(store.status().ToString());
    auto model = testing::BuildShards({{"model.w", DType::kFloat32, {8, 8}, 0, {2, 1}}}, rank, 2, true);
    auto optim = testing::BuildShards({{"optim.w", DType::kFloat32, {8, 8}, 0, {1, 2}}}, rank, 2, true);
    model.dict.Add("iteration", Value(int64_t{5}));
    optim.dict.Add("lr", Value(0.1));
    int i = rank * 8;
    s[i++] = (*store)->PutPart(model.dict);  // no session yet
    s[i++] = (*store)->BeginStep(5);
    s[i++] = (*store)->PutPart(model.dict);
    s[i++] = (*store)->Put(6, model.dict);  // not while a session is open
    s[i++] = (*store)->PutPart(model.dict);  // the same keys again
    s[i++] = (*store)->PutPart(optim.dict);
    s[i++] = (*store)->CommitStep();
    s[i++] = (*store)->CommitStep();  // the session is over
  });
  for (int r = 0; r < 2; ++r) {
    const Status* x = &s[r * 8];
    REQUIRE_THAT(x[0], StatusIs(StatusCode::kFailedPrecondition, "no write session is open"));
    REQUIRE_OK(x[1]);
    REQUIRE_OK(x[2]);
    REQUIRE_THAT(x[3], StatusIs(StatusCode::kFailedPrecondition, "a write session for step 5 is open"));
    REQUIRE_THAT(x[4], StatusIs(StatusCode::kInvalidArgument, "key 'model.w' was already written by an earlier part"));
    REQUIRE_OK(x[5]);
    REQUIRE_OK(x[6]);
    REQUIRE_THAT(x[7], StatusIs(StatusCode::kFailedPrecondition, "no write session is open"));
  }
  std::string why;
  const auto loaded = testing::LoadAll(dir.path(), 5, 1, {{"model.w", DType::kFloat32, {8, 8}, 0, {1, 1}},
                                                          {"optim.w", DType::kFloat32, {8, 8}, 0, {1, 1}}});
  INFO(why);
  REQUIRE(testing::AllOk(loaded, &why));
  CHECK(loaded.common[0].Find("iteration")->as_int() == 5);
  CHECK(loaded.common[0].Find("lr")->as_float() == 0.1);
}

TEST_CASE("an aborted or broken session publishes nothing", "[api][lifecycle]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  Weights w(4, 8);
  w.Fill(2.0f);
  REQUIRE_OK(store->BeginStep(1));
  REQUIRE_OK(store->PutPart(w.Dict()));
  REQUIRE_OK(store->AbortStep());
  CHECK(ValueOrDie(store->Steps()).empty());

  REQUIRE_OK(store->BeginStep(2));
  base::ArmFaultPoint("put.before_ingest", 0);
  REQUIRE_THAT(store->PutPart(w.Dict()), StatusIs(StatusCode::kIOError, "injected fault at 'put.before_ingest'"));
  base::DisarmAllFaultPoints();
  REQUIRE_THAT(store->PutPart(w.Dict()), StatusIs(StatusCode::kFailedPrecondition, "the write session failed"));
  REQUIRE_THAT(store->CommitStep(), StatusIs(StatusCode::kFailedPrecondition, "the write session failed"));
  REQUIRE_OK(store->AbortStep());
  CHECK(ValueOrDie(store->Steps()).empty());
  REQUIRE_OK(store->Put(3, w.Dict()));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{3});
}

TEST_CASE("deleting steps and retention", "[api][lifecycle]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  Weights w(2, 4);
  for (uint64_t step : {100, 200, 300, 400, 500, 600}) {
    w.Fill(static_cast<float>(step));
    REQUIRE_OK(store->Put(step, w.Dict()));
  }
  REQUIRE_THAT(store->DeleteStep(250), StatusIs(StatusCode::kNotFound, "step 250 is not committed"));
  REQUIRE_OK(store->DeleteStep(600));
  CHECK(ValueOrDie(store->LatestStep()) == std::optional<uint64_t>(500));  // LATEST moved back
  RetentionPolicy nothing;
  REQUIRE_THAT(store->ApplyRetention(nothing).status(),
               StatusIs(StatusCode::kInvalidArgument, "would delete all 5 committed steps"));
  CHECK(ValueOrDie(store->Steps()).size() == 5);
  RetentionPolicy policy;
  policy.keep_last = 1;
  policy.keep_every = 200;
  policy.keep_steps = {100};
  CHECK(ValueOrDie(store->ApplyRetention(policy)) == std::vector<uint64_t>{300});
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{100, 200, 400, 500});
  w.Fill(400.0f);
  CHECK(LoadW(dir.path(), 400, w.data.size()) == w.data);
}

TEST_CASE("the agreed latest step, and the one at open, are rank 0's on every rank", "[api][lifecycle]") {
  // Ranks that see the store differently (a shared filesystem's stale view),
  // played by two stores: rank 0 opens `seen_by_0`, the others `seen_by_others`.
  testing::TempDir seen_by_0, seen_by_others;
  auto latest_on = [&](int ranks) {
    std::vector<std::optional<uint64_t>> agreed(ranks), own(ranks), at_open(ranks);
    std::vector<Status> s(ranks);
    testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
      auto store = Store::Open(rank == 0 ? seen_by_0.path() : seen_by_others.path(), comm,
                               StoreOptions{.create_if_missing = false, .read_only = true});
      auto latest = store.ok() ? (*store)->AgreedLatestStep() : Result<std::optional<uint64_t>>(store.status());
      if (latest.ok()) agreed[rank] = *latest;
      if (store.ok()) own[rank] = ValueOrDie((*store)->LatestStep());
      if (store.ok()) at_open[rank] = ValueOrDie((*store)->LatestStepAtOpen());
      s[rank] = latest.status();
    });
    for (const Status& st : s) REQUIRE_OK(st);
    CHECK(at_open == agreed);  // nothing committed between the open and the agreement
    return std::make_pair(agreed, own);
  };
  for (const auto& root : {seen_by_0.path(), seen_by_others.path()}) {
    auto store = ValueOrDie(Store::Open(root, nullptr));  // creates the store, with no step
  }
  using Steps = std::vector<std::optional<uint64_t>>;
  {
    auto store = ValueOrDie(Store::Open(seen_by_others.path(), nullptr));
    Weights w(1, 2);
    REQUIRE_OK(store->Put(4, w.Dict()));
  }
  auto [agreed, own] = latest_on(3);
  CHECK(agreed == Steps(3));  // rank 0 sees no step: none on every rank
  CHECK(own == Steps{std::nullopt, 4, 4});
  {
    auto store = ValueOrDie(Store::Open(seen_by_0.path(), nullptr));
    Weights w(1, 2);
    REQUIRE_OK(store->Put(7, w.Dict()));
    REQUIRE_OK(store->Put(3, w.Dict()));
  }
  std::tie(agreed, own) = latest_on(3);
  CHECK(agreed == Steps(3, 7));
  CHECK(own == Steps{7, 4, 4});
}

TEST_CASE("the latest step at open is the open's: later commits and deletions leave it", "[api][lifecycle]") {
  testing::TempDir dir;
  Weights w(1, 2);
  {
    auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
    CHECK(ValueOrDie(store->LatestStepAtOpen()) == std::nullopt);
    REQUIRE_OK(store->Put(5, w.Dict()));
    CHECK(ValueOrDie(store->LatestStepAtOpen()) == std::nullopt);
    CHECK(ValueOrDie(store->LatestStep()) == 5u);
  }
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  CHECK(ValueOrDie(store->LatestStepAtOpen()) == 5u);
  REQUIRE_OK(store->DeleteStep(5));
  CHECK(ValueOrDie(store->LatestStepAtOpen()) == 5u);
  CHECK(ValueOrDie(store->LatestStep()) == std::nullopt);
}

TEST_CASE("garbage collection reclaims unreferenced records and keeps referenced ones", "[api][lifecycle]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  Weights w(20, 64);  // 20 chunks of 64 KiB
  w.Fill(1.0f);
  REQUIRE_OK(store->Put(1, w.Dict(), SmallChunks(64)));
  w.Change(0, 5.0f);
  w.Change(1, 6.0f);
  REQUIRE_OK(store->Put(2, w.Dict(), SmallChunks(64)));  // references 18 chunks of step 1
  w.Fill(9.0f);
  REQUIRE_OK(store->Put(3, w.Dict(), SmallChunks(64)));  // all new
  const std::vector<float> step2 = LoadW(dir.path(), 2, w.data.size());

  GcReport nothing;
  REQUIRE_OK(store->CollectGarbage(&nothing));
  CHECK(nothing.generations_removed == 0);
  CHECK(nothing.records_removed == 0);

  REQUIRE_OK(store->DeleteStep(3));  // its generation has no other user: dropped whole
  REQUIRE_OK(store->DeleteStep(1));  // 2 of its 20 records are dead, 18 live on in step 2
  // By default a put that is only 10% dead is not worth rewriting yet.
  GcReport lazy;
  REQUIRE_OK(store->CollectGarbage(&lazy));
  CHECK(lazy.generations_removed == 1);
  CHECK(lazy.records_removed == 0);
  CHECK(lazy.bytes_pending >= 2 * 64 * 1024);  // step 1's two dead chunks
  CHECK(lazy.bytes_pending < 4 * 64 * 1024);
  CHECK(static_cast<double>(lazy.bytes_after) < 0.6 * static_cast<double>(lazy.bytes_before));
  CHECK(LoadW(dir.path(), 2, w.data.size()) == step2);
  // Compacting whatever is dead frees the rest.
  GcOptions eager;
  eager.compact_dead_fraction = 0;
  GcReport gc;
  REQUIRE_OK(store->CollectGarbage(&gc, eager));
  CHECK(gc.generations_removed == 0);
  CHECK(gc.records_removed == 2);
  CHECK(gc.bytes_after + 2 * 64 * 1024 <= gc.bytes_before);
  CHECK(gc.bytes_pending == 0);
  CHECK(LoadW(dir.path(), 2, w.data.size()) == step2);
  GcReport again;
  REQUIRE_OK(store->CollectGarbage(&again, eager));
  CHECK(again.generations_removed == 0);
  CHECK(again.records_removed == 0);
  CHECK(again.bytes_after == gc.bytes_after);
}

TEST_CASE("one writer per store; readers read while it writes", "[api][lifecycle]") {
  testing::TempDir dir;
  auto writer = ValueOrDie(Store::Open(dir.path(), nullptr));
  REQUIRE_THAT(Store::Open(dir.path(), nullptr, StoreOptions{.lock_wait_ms = 50}).status(),
               StatusIs(StatusCode::kFailedPrecondition, "is locked by another writer (pid"));
  Weights w(8, 32);
  w.Fill(3.0f);
  REQUIRE_OK(writer->Put(1, w.Dict(), SmallChunks(32)));
  auto reader = Reader(dir.path());  // opened while the writer holds the store

  // A reader loads step 1 again and again while the writer commits steps
  // 2..9 and deletes and collects the old ones.
  std::atomic<bool> stop{false};
  std::atomic<int> loads{0}, bad{0};
  const std::vector<float> step1 = w.data;
  std::thread t([&] {
    std::vector<float> out(w.data.size());
    while (!stop) {
      std::fill(out.begin(), out.end(), -1.0f);
      const Status s = reader->Read(1, "w", Box{{0, 0}, {256, 256}}, TensorView(out.data(), DType::kFloat32, {256, 256}));
      if (!s.ok() || out != step1) ++bad;
      ++loads;
    }
  });
  for (uint64_t step = 2; step < 10; ++step) {
    w.Change(static_cast<int64_t>(step % 8), static_cast<float>(step));
    REQUIRE_OK(writer->Put(step, w.Dict(), SmallChunks(32)));
    if (step >= 4) REQUIRE_OK(writer->DeleteStep(step - 2));
    REQUIRE_OK(writer->CollectGarbage());
  }
  stop = true;
  t.join();
  CHECK(loads > 0);
  CHECK(bad == 0);
  // The writer's lock goes with it.
  writer.reset();
  auto second = ValueOrDie(Store::Open(dir.path(), nullptr));
  CHECK(ValueOrDie(second->Steps()) == std::vector<uint64_t>{1, 8, 9});
}

TEST_CASE("a missing or corrupt rank store is an error naming the rank; other steps still load", "[api][lifecycle]") {
  testing::TempDir dir;
  std::string why;
  // Step 1 lives in rank stores 0 and 1; step 2 only in rank store 0.
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 1, 2, {{"a", DType::kInt32, {4, 4}, 0, {2, 1}}}), &why));
  REQUIRE(testing::AllOk(testing::SaveAll(dir.path(), 2, 1, {{"b", DType::kInt32, {4, 4}, 0, {1, 1}}}), &why));
  std::filesystem::remove_all(storage::RankStorePath(dir.path(), 1));
  const auto a = testing::LoadAll(dir.path(), 1, 1, {{"a", DType::kInt32, {4, 4}, 0, {1, 1}}});
  REQUIRE_THAT(a.status[0], StatusIs(StatusCode::kDataLoss, "in rank store 1 is missing: rank store 1 at '"));
  REQUIRE(testing::AllOk(testing::LoadAll(dir.path(), 2, 1, {{"b", DType::kInt32, {4, 4}, 0, {1, 1}}}), &why));

  // A rank store whose files are garbage.
  std::filesystem::create_directories(storage::RankStorePath(dir.path(), 1));
  std::ofstream(storage::RankStorePath(dir.path(), 1) + "/CURRENT") << "garbage\n";
  const auto c = testing::LoadAll(dir.path(), 1, 1, {{"a", DType::kInt32, {4, 4}, 0, {1, 1}}});
  REQUIRE_FALSE(c.status[0].ok());
  CHECK(c.status[0].message().find("rank store 1") != std::string::npos);
  REQUIRE(testing::AllOk(testing::LoadAll(dir.path(), 2, 1, {{"b", DType::kInt32, {4, 4}, 0, {1, 1}}}), &why));
}

}  // namespace
}  // namespace dcp
