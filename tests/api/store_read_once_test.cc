// Copyright (c) dcp authors.
//
// Read-once loads (LoadOptions::read_once) end to end on in-process ranks:
// bit-exact across layouts, each shared chunk read from disk once, the
// per-rank byte balance in LoadResult::report, and errors that are the same
// on every rank.

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "dcp/store.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::AllOk;
using testing::LoadAll;
using testing::SaveAll;
using testing::TensorSpec;

struct Loaded {
  std::vector<Status> status;
  std::vector<std::string> check;
  std::vector<LoadReport> report;
};

// Loads `specs` with `ranks` ranks, checking every byte, keeping the reports.
// `tweak` may change rank r's request before the load.
Loaded LoadWithReports(const std::string& root, uint64_t step, int ranks, const std::vector<TensorSpec>& specs,
                       const LoadOptions& options,
                       const std::function<void(int, StateDict*)>& tweak = [](int, StateDict*) {}) {
  Loaded o;
  o.status.resize(static_cast<size_t>(ranks));
  o.check.resize(static_cast<size_t>(ranks));
  o.report.resize(static_cast<size_t>(ranks));
  testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
    testing::RankShards shards = testing::BuildShards(specs, rank, ranks, /*fill=*/false);
    tweak(rank, &shards.dict);
    StoreOptions so;
    so.read_only = true;
    auto store = Store::Open(root, comm, so);
    if (!store.ok()) {
      o.status[static_cast<size_t>(rank)] = store.status();
      return;
    }
    auto loaded = (*store)->Get(step, &shards.dict, options);
    o.status[static_cast<size_t>(rank)] = loaded.status();
    if (!loaded.ok()) return;
    o.report[static_cast<size_t>(rank)] = loaded->report;
    const StateDict& model = shards.dict.dict(shards.dict.Find("model"));
    for (size_t i = 0; i < model.size() && o.check[static_cast<size_t>(rank)].empty(); ++i) {
      const ShardedTensor& t = model.tensor(i);
      o.check[static_cast<size_t>(rank)] = testing::CheckRegion(t.key, t.global_shape, t.global_box(), t.data);
    }
  });
  return o;
}

bool AllLoaded(const Loaded& o, std::string* why) {
  for (size_t r = 0; r < o.status.size(); ++r) {
    if (!o.status[r].ok() || !o.check[r].empty()) {
      *why = "rank " + std::to_string(r) + ": " + (o.status[r].ok() ? o.check[r] : o.status[r].ToString());
      return false;
    }
  }
  return true;
}

uint64_t StepChunks(const std::string& root, uint64_t step, uint64_t* stored_bytes) {
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata md = ValueOrDie(store->Metadata(step));
  *stored_bytes = md.info.stored_bytes;
  return md.info.num_chunks;
}

TEST_CASE("read-once: data-parallel replicas read each chunk once and split the reading", "[api]") {
  testing::TempDir dir;
  // Two shards per tensor; on four ranks ranks 2 and 3 replicate ranks 0 and 1.
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {64, 32}, 0, {2, 1}},
                                         {"b", DType::kBFloat16, {96}, 0, {2}}};
  SaveOptions save;
  save.chunk_bytes = 1024;
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 1, 2, specs, save), &why));
  uint64_t stored = 0;
  const uint64_t chunks = StepChunks(dir.path(), 1, &stored);

  LoadOptions direct;
  const Loaded d = LoadWithReports(dir.path(), 1, 4, specs, direct);
  INFO(why);
  REQUIRE(AllLoaded(d, &why));
  uint64_t direct_read = 0;
  for (const auto& r : d.report) {
    direct_read += r.chunks_read;
    CHECK(r.chunks_sent == 0);
    CHECK(r.chunks_received == 0);
  }
  CHECK(direct_read == 2 * chunks);  // every chunk by both of its replicas

  LoadOptions once;
  once.read_once = true;
  once.max_inflight_bytes = 4096;  // several rounds
  const Loaded o = LoadWithReports(dir.path(), 1, 4, specs, once);
  REQUIRE(AllLoaded(o, &why));
  uint64_t read = 0, bytes = 0, sent = 0, received = 0, max_bytes = 0, min_bytes = UINT64_MAX;
  for (const auto& r : o.report) {
    read += r.chunks_read;
    bytes += r.bytes_read;
    sent += r.chunks_sent;
    received += r.chunks_received;
    max_bytes = std::max(max_bytes, r.bytes_read);
    min_bytes = std::min(min_bytes, r.bytes_read);
    CHECK(r.chunks_read == r.chunks_sent);  // every chunk a rank reads, its replica needs too
    CHECK(r.chunks_received > 0);
  }
  CHECK(read == chunks);
  CHECK(bytes == stored);
  CHECK(sent == chunks);
  CHECK(received == chunks);
  CHECK(max_bytes - min_bytes <= 2 * (1024 + 48));  // balanced to about a chunk per pair
}

TEST_CASE("read-once: layouts change across the load, bit-exact", "[api]") {
  testing::TempDir dir;
  const std::vector<TensorSpec> save = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {2, 1}},
      {"layers.qkv", DType::kBFloat16, {4, 48, 16}, 1, {4, 2, 1}},
      {"layers.proj", DType::kFloat32, {4, 16, 16}, 1, {4, 1, 2}},
      {"layers.ln", DType::kFloat32, {4, 16}, 1, {4, 1}},
      {"scalar", DType::kInt64, {}, 0, {}},
  };
  SaveOptions so;
  so.chunk_bytes = 256;
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 10, 4, save, so), &why));
  const std::vector<TensorSpec> load = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {1, 2}},
      {"layers.qkv", DType::kBFloat16, {4, 48, 16}, 1, {4, 1, 2}},
      {"layers.proj", DType::kFloat32, {4, 16, 16}, 1, {4, 2, 1}},
      {"layers.ln", DType::kFloat32, {4, 16}, 1, {4, 2}},
      {"scalar", DType::kInt64, {}, 0, {}},
  };
  for (int ranks : {1, 2, 3, 5, 8}) {
    for (uint64_t inflight : {uint64_t{1}, uint64_t{2048}, uint64_t{256} << 20}) {
      LoadOptions options;
      options.read_once = true;
      options.max_inflight_bytes = inflight;
      INFO(ranks << " ranks, " << inflight << " bytes in flight");
      const auto loaded = LoadAll(dir.path(), 10, ranks, load, options);
      INFO(why);
      REQUIRE(AllOk(loaded, &why));
    }
  }
}

TEST_CASE("read-once: property over random shapes, layouts and rank counts", "[api][property]") {
  std::mt19937 rng(20261129);
  for (int trial = 0; trial < 8; ++trial) {
    testing::TempDir dir;
    const int save_ranks = std::uniform_int_distribution<int>(1, 6)(rng);
    const int load_ranks = std::uniform_int_distribution<int>(2, 7)(rng);
    std::vector<TensorSpec> save, load;
    testing::AddRandomTensors(&rng, 3, &save, &load);
    SaveOptions so;
    so.chunk_bytes = std::uniform_int_distribution<int>(8, 256)(rng);
    LoadOptions lo;
    lo.read_once = true;
    lo.max_inflight_bytes = std::uniform_int_distribution<uint64_t>(1, 4096)(rng);
    lo.read_threads = std::uniform_int_distribution<int>(1, 3)(rng);
    std::string why;
    INFO("trial " << trial << ": " << save_ranks << " -> " << load_ranks << " ranks");
    REQUIRE(AllOk(SaveAll(dir.path(), 7, save_ranks, save, so), &why));
    const auto loaded = LoadAll(dir.path(), 7, load_ranks, load, lo);
    INFO(why);
    REQUIRE(AllOk(loaded, &why));
  }
}

TEST_CASE("read-once: a bad request on one rank fails every rank the same way", "[api][errors]") {
  testing::TempDir dir;
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {16, 4}, 0, {2, 1}}};
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 1, 2, specs), &why));
  LoadOptions options;
  options.read_once = true;
  // Rank 1 asks for a key the step does not hold; rank 2 for a wrong dtype.
  const Loaded o = LoadWithReports(dir.path(), 1, 4, specs, options, [](int rank, StateDict* sd) {
    StateDict& model = sd->dict(sd->Find("model"));
    if (rank == 1) model.tensor(0).key = "no.such.tensor";
    if (rank == 2) {
      model.tensor(0).dtype = DType::kInt32;
      model.tensor(0).data = TensorView(model.tensor(0).data.data(), DType::kInt32, model.tensor(0).data.shape());
    }
  });
  for (size_t r = 0; r < 4; ++r) {
    CHECK_THAT(o.status[r], testing::StatusIs(StatusCode::kNotFound,
                                              "get of step 1: rank 1: state dict entry 'model.w#0': tensor "
                                              "'no.such.tensor' is not in step 1 (2 ranks failed"));
    CHECK(o.status[r] == o.status[0]);
  }
}

}  // namespace
}  // namespace dcp
