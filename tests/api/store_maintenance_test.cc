// Copyright (c) dcp authors.
//
// Removing the tensors of a key prefix from a step: in place or into a new
// step, what readers and garbage collection see afterwards, and every error.

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

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
using testing::TensorSpec;

constexpr int kRanks = 2;

const std::vector<TensorSpec>& Specs() {
  static const std::vector<TensorSpec> specs = {
      {"model.a", DType::kFloat32, {64, 32}, 0, {2, 1}},
      {"model.b", DType::kInt64, {16}, 0, {2}},
      {"optimizer.state.exp_avg.model.a", DType::kFloat32, {64, 32}, 0, {2, 1}},
      {"optimizer.state.exp_avg_sq.model.a", DType::kFloat32, {64, 32}, 0, {1, 2}},
  };
  return specs;
}

std::vector<TensorSpec> Only(const std::vector<std::string>& keys) {
  std::vector<TensorSpec> out;
  for (const TensorSpec& s : Specs()) {
    if (std::find(keys.begin(), keys.end(), s.key) != keys.end()) out.push_back(s);
  }
  return out;
}

SaveOptions Uncompressed() {
  SaveOptions o;
  o.compression = Compression::kNone;
  o.chunk_bytes = 4096;  // several records per shard
  return o;
}

// `step` of Specs() from two ranks, with object "rng" and common "iteration".
void Save(const std::string& root, uint64_t step, const SaveOptions& options = Uncompressed()) {
  std::vector<Status> s(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(Specs(), rank, kRanks, /*fill=*/true);
    shards.dict.Add("rng", ShardedObject{"rng", "rng-" + std::to_string(rank), {kRanks}, {rank}, {}});
    shards.dict.Add("iteration", Value(static_cast<int64_t>(step)));
    auto store = Store::Open(root, comm);
    s[rank] = store.ok() ? (*store)->Put(step, shards.dict, options) : store.status();
  });
  for (const Status& x : s) REQUIRE_OK(x);
}

// RemoveTensors on every rank; element r is rank r's outcome.
std::vector<Result<std::vector<std::string>>> Remove(const std::string& root, uint64_t step,
                                                     const std::string& prefix,
                                                     const RemoveTensorsOptions& options = {},
                                                     const StoreOptions& store_options = {}) {
  std::vector<Result<std::vector<std::string>>> out(kRanks, Status::Internal("not run"));
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto store = Store::Open(root, comm, store_options);
    if (!store.ok()) {
      out[rank] = store.status();
      return;
    }
    out[rank] = (*store)->RemoveTensors(step, prefix, options);
  });
  return out;
}

std::vector<std::string> TensorKeys(Store* store, uint64_t step) {
  std::vector<std::string> keys;
  for (const TensorInfo& t : ValueOrDie(store->Metadata(step)).tensors) keys.push_back(t.key);
  return keys;
}

std::unique_ptr<Store> Reader(const std::string& root) {
  return ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
}

// Loads `step` with two ranks in another layout and checks every byte of `specs`.
void ExpectLoads(const std::string& root, uint64_t step, const std::vector<TensorSpec>& specs) {
  std::vector<TensorSpec> other = specs;
  for (TensorSpec& s : other) std::reverse(s.fragments.begin(), s.fragments.end());  // another grid
  for (TensorSpec& s : other) {
    for (size_t d = 0; d < s.fragments.size(); ++d) {
      if (s.global[d] % s.fragments[d] != 0) s.fragments[d] = 1;
    }
  }
  std::string why;
  const auto loaded = testing::LoadAll(root, step, kRanks, other);
  INFO(why);
  REQUIRE(testing::AllOk(loaded, &why));
}

TEST_CASE("tensors of a prefix are removed from a step in place", "[api][maintenance]") {
  testing::TempDir dir;
  Save(dir.path(), 1);
  const auto r = Remove(dir.path(), 1, "optimizer.");
  for (const auto& x : r) {
    REQUIRE_OK(x.status());
    CHECK(*x == std::vector<std::string>{"optimizer.state.exp_avg.model.a", "optimizer.state.exp_avg_sq.model.a"});
  }
  auto store = Reader(dir.path());
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1});
  CHECK(ValueOrDie(store->LatestStep()) == std::optional<uint64_t>(1));
  CHECK(TensorKeys(store.get(), 1) == std::vector<std::string>{"model.a", "model.b"});
  const StepMetadata m = ValueOrDie(store->Metadata(1));
  CHECK(m.objects.size() == 2);            // objects are kept
  CHECK(m.info.unique_bytes == m.info.stored_bytes);  // still the records it wrote
  ExpectLoads(dir.path(), 1, Only({"model.a", "model.b"}));
  PlainState plain = ValueOrDie(store->LoadPlain(1));
  CHECK(plain.common_state.Find("iteration")->as_int() == 1);
  CHECK(plain.FindObject("rng/shard_1_2")->data == "rng-1");
  std::vector<float> dest(64 * 32);
  REQUIRE_THAT(store->Read(1, "optimizer.state.exp_avg.model.a", Box{{0, 0}, {64, 32}},
                           TensorView(dest.data(), DType::kFloat32, {64, 32})),
               StatusIs(StatusCode::kNotFound, "tensor 'optimizer.state.exp_avg.model.a' is not in step 1"));
}

TEST_CASE("tensors of a prefix are removed into a new step", "[api][maintenance]") {
  testing::TempDir dir;
  Save(dir.path(), 1);
  const auto r = Remove(dir.path(), 1, "model.b", {.into_step = 5});
  for (const auto& x : r) {
    REQUIRE_OK(x.status());
    CHECK(*x == std::vector<std::string>{"model.b"});
  }
  auto store = Reader(dir.path());
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1, 5});
  CHECK(ValueOrDie(store->LatestStep()) == std::optional<uint64_t>(5));
  CHECK(TensorKeys(store.get(), 1).size() == 4);  // the source is left as it is
  CHECK(TensorKeys(store.get(), 5) ==
        std::vector<std::string>{"model.a", "optimizer.state.exp_avg.model.a", "optimizer.state.exp_avg_sq.model.a"});
  const StepMetadata m1 = ValueOrDie(store->Metadata(1)), m5 = ValueOrDie(store->Metadata(5));
  CHECK(m5.info.step == 5);
  CHECK(m5.info.generation > m1.info.generation);
  CHECK(m5.info.unique_bytes == 0);  // it wrote nothing: every record is step 1's
  CHECK(m5.info.stored_bytes == m1.info.stored_bytes - m1.FindTensor("model.b")->stored_bytes);
  ExpectLoads(dir.path(), 5, Only({"model.a", "optimizer.state.exp_avg.model.a", "optimizer.state.exp_avg_sq.model.a"}));
  ExpectLoads(dir.path(), 1, Specs());

  // With the source deleted and garbage collected, the new step still loads.
  {
    std::vector<Status> s(kRanks);
    testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
      auto w = Store::Open(dir.path(), comm);
      if (!w.ok()) {
        s[rank] = w.status();
        return;
      }
      s[rank] = (*w)->DeleteStep(1);
      GcOptions eager;
      eager.compact_dead_fraction = 0;
      GcReport report;
      if (s[rank].ok()) s[rank] = (*w)->CollectGarbage(&report, eager);
      if (s[rank].ok() && report.records_removed == 0) s[rank] = Status::Internal("gc removed no record");
    });
    for (const Status& x : s) REQUIRE_OK(x);
  }
  ExpectLoads(dir.path(), 5, Only({"model.a", "optimizer.state.exp_avg.model.a", "optimizer.state.exp_avg_sq.model.a"}));

  // A put after it takes it as its incremental base.
  std::vector<Status> s(kRanks);
  std::vector<SaveReport> reports(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(Only({"model.a"}), rank, kRanks, /*fill=*/true);
    auto w = Store::Open(dir.path(), comm);
    s[rank] = w.ok() ? (*w)->Put(6, shards.dict, Uncompressed(), &reports[rank]) : w.status();
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    REQUIRE_OK(s[rank]);
    CHECK(reports[rank].chunks_written == 0);
    CHECK(reports[rank].chunks_referenced > 0);
  }
  CHECK(ValueOrDie(Reader(dir.path())->Metadata(6)).info.generation > ValueOrDie(store->Metadata(5)).info.generation);
}

TEST_CASE("garbage collection reclaims the records of removed tensors", "[api][maintenance]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  std::vector<float> keep(64 * 256, 1.0f), drop(64 * 256, 2.0f);
  StateDict sd;
  sd.Add("keep", ShardedTensor::Whole("keep", TensorView(keep.data(), DType::kFloat32, {64, 256})));
  sd.Add("drop", ShardedTensor::Whole("drop", TensorView(drop.data(), DType::kFloat32, {64, 256})));
  SaveOptions o = Uncompressed();
  o.chunk_bytes = 8 * 256 * 4;  // 8 chunks per tensor
  REQUIRE_OK(store->Put(1, sd, o));
  REQUIRE_OK(store->RemoveTensors(1, "drop").status());
  GcOptions eager;
  eager.compact_dead_fraction = 0;
  GcReport first, second;
  REQUIRE_OK(store->CollectGarbage(&first, eager));
  CHECK(first.records_removed == 8);
  CHECK(first.bytes_after < first.bytes_before);
  REQUIRE_OK(store->CollectGarbage(&second, eager));
  CHECK(second.records_removed == 0);
  CHECK(second.generations_removed == 0);
  std::vector<float> out(64 * 256, 0.0f);
  REQUIRE_OK(store->Read(1, "keep", Box{{0, 0}, {64, 256}}, TensorView(out.data(), DType::kFloat32, {64, 256})));
  CHECK(out == keep);
}

TEST_CASE("removing tensors: every error is clear, the same on every rank, and changes nothing",
          "[api][maintenance]") {
  testing::TempDir dir;
  Save(dir.path(), 1);
  Save(dir.path(), 2);
  auto expect = [&](const std::vector<Result<std::vector<std::string>>>& r, StatusCode code,
                    const std::string& fragment) {
    for (const auto& x : r) {
      REQUIRE_THAT(x.status(), StatusIs(code, fragment));
      CHECK(x.status() == r[0].status());
    }
    auto reader = Reader(dir.path());
    CHECK(ValueOrDie(reader->Steps()) == std::vector<uint64_t>{1, 2});
    CHECK(TensorKeys(reader.get(), 1).size() == 4);
    CHECK(TensorKeys(reader.get(), 2).size() == 4);
  };
  expect(Remove(dir.path(), 7, "model."), StatusCode::kNotFound,
         "removal of tensors 'model.*' from step 7: step 7 is not committed");
  expect(Remove(dir.path(), 1, "zzz"), StatusCode::kNotFound, "no tensor of step 1 has a key starting with 'zzz'");
  expect(Remove(dir.path(), 1, "rng"), StatusCode::kNotFound, "no tensor of step 1 has a key starting with 'rng'");
  expect(Remove(dir.path(), 1, ""), StatusCode::kInvalidArgument, "the key prefix is empty");
  expect(Remove(dir.path(), 1, "model.", {.into_step = 2}), StatusCode::kAlreadyExists,
         "removal of tensors 'model.*' from step 1 into step 2: step 2 already exists");
  expect(Remove(dir.path(), 1, "model.", {}, StoreOptions{.create_if_missing = false, .read_only = true}),
         StatusCode::kFailedPrecondition, "was opened read-only");
  base::ArmFaultPoint("remove.before_publish");
  expect(Remove(dir.path(), 1, "model."), StatusCode::kIOError, "injected fault at 'remove.before_publish'");
  expect(Remove(dir.path(), 1, "model.", {.into_step = 3}), StatusCode::kIOError, "remove.before_publish");
  base::DisarmAllFaultPoints();
  ExpectLoads(dir.path(), 1, Specs());

  // Not while a write session is open.
  std::vector<Status> s(kRanks), begin(kRanks), abort(kRanks);
  testing::RunRanks(kRanks, [&](int rank, Communicator* comm) {
    auto store = Store::Open(dir.path(), comm);
    if (!store.ok()) {
      s[rank] = store.status();
      return;
    }
    begin[rank] = (*store)->BeginStep(9);
    s[rank] = (*store)->RemoveTensors(1, "model.").status();
    abort[rank] = (*store)->AbortStep();
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    REQUIRE_OK(begin[rank]);
    REQUIRE_THAT(s[rank], StatusIs(StatusCode::kFailedPrecondition, "a write session for step 9 is open"));
    REQUIRE_OK(abort[rank]);
  }

  // With overwrite, an existing step is replaced by the source without the prefix.
  const auto r = Remove(dir.path(), 1, "model.", {.into_step = 2, .overwrite = true});
  for (const auto& x : r) REQUIRE_OK(x.status());
  auto reader = Reader(dir.path());
  CHECK(TensorKeys(reader.get(), 2) ==
        std::vector<std::string>{"optimizer.state.exp_avg.model.a", "optimizer.state.exp_avg_sq.model.a"});
  CHECK(ValueOrDie(reader->LoadPlain(2)).common_state.Find("iteration")->as_int() == 1);  // step 1's
}

}  // namespace
}  // namespace dcp
