// Copyright (c) dcp authors.
//
// A damaged store: what loads, what a writer does next, and what it never
// does (reference a record that is gone, refuse to save, block on a FIFO).

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "engine/store/key_layout.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

namespace fs = std::filesystem;
using testing::StatusIs;
using testing::TensorSpec;

// 4 chunks of 32 KiB per rank: each record is a table block of its own.
const std::vector<TensorSpec> kState = {{"w", DType::kFloat32, {64, 512}, 0, {2, 1}},
                                        {"b", DType::kBFloat16, {6}, 0, {2}}};
// Other tensors: a step that shares no record with kState's.
const std::vector<TensorSpec> kOther = {{"v", DType::kFloat32, {32, 512}, 0, {2, 1}}};

SaveOptions SmallChunks() {
  SaveOptions o;
  o.chunk_bytes = 32 << 10;
  return o;
}

void Save(const std::string& root, uint64_t step, const std::vector<TensorSpec>& specs) {
  std::string why;
  const auto o = testing::SaveAll(root, step, 2, specs, SmallChunks());
  INFO(why);
  REQUIRE(testing::AllOk(o, &why));
}

// Loads `step` on one rank; "" if every byte is right, else the error.
std::string Load(const std::string& root, uint64_t step, const std::vector<TensorSpec>& specs) {
  std::vector<TensorSpec> one = specs;
  for (auto& s : one) s.fragments.assign(s.global.size(), 1);
  std::string why;
  const auto o = testing::LoadAll(root, step, 1, one);
  return testing::AllOk(o, &why) ? "" : why;
}

// A put of `step` from 2 ranks through freshly opened stores (as a restarted
// job does); rank 0's report.
Status PutFresh(const std::string& root, uint64_t step, const std::vector<TensorSpec>& specs, SaveReport* report) {
  std::vector<Status> status(2);
  std::vector<SaveReport> reports(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto shards = testing::BuildShards(specs, rank, 2, true);
    shards.dict.Add("iteration", Value(static_cast<int64_t>(step)));
    auto store = Store::Open(root, comm);
    status[rank] = store.ok() ? (*store)->Put(step, shards.dict, SmallChunks(), &reports[rank]) : store.status();
  });
  if (status[0] != status[1]) return Status::Internal("ranks disagree: " + status[0].ToString() + " / " + status[1].ToString());
  report->chunks_written = reports[0].chunks_written + reports[1].chunks_written;
  report->chunks_referenced = reports[0].chunks_referenced + reports[1].chunks_referenced;
  report->base_records_unusable = reports[0].base_records_unusable + reports[1].base_records_unusable;
  return status[0];
}

// Flips a byte `delta` bytes into the value of the record whose key is
// `record_key`, in rank `rank`'s table files. False if the key is not found.
bool FlipRecordByte(const std::string& root, uint32_t rank, const std::string& record_key, size_t delta) {
  for (const auto& e : fs::directory_iterator(storage::RankStorePath(root, rank))) {
    if (e.path().extension() != ".sst") continue;
    std::string bytes;
    {
      std::ifstream in(e.path(), std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const size_t at = bytes.find(record_key);
    if (at == std::string::npos || at + record_key.size() + delta >= bytes.size()) continue;
    bytes[at + record_key.size() + delta] ^= 0x21;
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << bytes;
    return true;
  }
  return false;
}

uint64_t GenerationOf(const std::string& root, uint64_t step) {
  auto store = ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata m = ValueOrDie(store->Metadata(step));
  return m.info.generation;
}

TEST_CASE("An incremental put rewrites a base record found damaged; the new step loads", "[api][damage]") {
  testing::TempDir dir;
  Save(dir.path(), 1, kState);
  // Rank 1 holds rows 32..63 of w: damage the chunk at row 40.
  const std::string key = storage::ChunkRecordKey(GenerationOf(dir.path(), 1), "w", {48, 0});
  REQUIRE(FlipRecordByte(dir.path(), 1, key, 2000));
  const std::string damaged = Load(dir.path(), 1, kState);
  CHECK_THAT(damaged, Catch::Contains("tensor 'w' chunk at offset (48, 0) in rank store 1"));
  CHECK_THAT(damaged, Catch::Contains("data loss") && Catch::Contains(storage::RankStorePath(dir.path(), 1)));

  SaveReport report;
  REQUIRE_OK(PutFresh(dir.path(), 2, kState, &report));
  CHECK(report.base_records_unusable == 1);
  CHECK(report.chunks_written == 1);
  CHECK(report.chunks_referenced > 0);
  CHECK(Load(dir.path(), 2, kState) == "");
  // The damaged step stays damaged (nothing rewrites history).
  CHECK_THAT(Load(dir.path(), 1, kState), Catch::Contains("checksum mismatch"));
}

TEST_CASE("A put after a rank store was deleted writes what it cannot reference", "[api][damage]") {
  testing::TempDir dir;
  Save(dir.path(), 1, kState);
  fs::remove_all(storage::RankStorePath(dir.path(), 1));
  SaveReport report;
  REQUIRE_OK(PutFresh(dir.path(), 2, kState, &report));
  CHECK(report.base_records_unusable > 0);
  CHECK(Load(dir.path(), 2, kState) == "");
  CHECK_THAT(Load(dir.path(), 1, kState), Catch::Contains("rank store 1"));
}

TEST_CASE("A lost table file breaks only the steps whose records it held", "[api][damage]") {
  testing::TempDir dir;
  Save(dir.path(), 1, kState);
  Save(dir.path(), 2, kOther);
  // Rank 1's first table file holds step 1's records.
  std::vector<fs::path> tables;
  for (const auto& e : fs::directory_iterator(storage::RankStorePath(dir.path(), 1))) {
    if (e.path().extension() == ".sst") tables.push_back(e.path());
  }
  std::sort(tables.begin(), tables.end());
  REQUIRE(tables.size() == 2);
  fs::remove(tables[0]);

  // Readers: the intact step loads; the other names what is missing and why.
  CHECK(Load(dir.path(), 2, kOther) == "");
  const std::string broken = Load(dir.path(), 1, kState);
  CHECK_THAT(broken, Catch::Contains("data loss") && Catch::Contains("rank store 1") &&
                         Catch::Contains(tables[0].filename().string()));
  // The next save succeeds (the writer repairs the rank store), and the intact
  // step still loads.
  SaveReport report;
  REQUIRE_OK(PutFresh(dir.path(), 3, kState, &report));
  CHECK(Load(dir.path(), 3, kState) == "");
  CHECK(Load(dir.path(), 2, kOther) == "");
  CHECK_THAT(Load(dir.path(), 1, kState), Catch::Contains("rank store 1"));
}

TEST_CASE("A manifest that is a FIFO is refused without blocking", "[api][damage]") {
  testing::TempDir dir;
  Save(dir.path(), 1, kState);
  REQUIRE(::mkfifo(storage::ManifestPath(dir.path(), 5).c_str(), 0644) == 0);
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK_THAT(store->Metadata(5).status(), StatusIs(StatusCode::kDataLoss, "is a FIFO, not a regular file"));
  CHECK_THAT(Load(dir.path(), 5, kState), Catch::Contains("is a FIFO"));
  // A writer whose latest step is the FIFO saves without incremental dedup.
  SaveReport report;
  REQUIRE_OK(PutFresh(dir.path(), 6, kState, &report));
  CHECK(Load(dir.path(), 6, kState) == "");
}

TEST_CASE("A store whose marker was lost still opens; a writer rewrites the marker", "[api][damage]") {
  testing::TempDir dir;
  Save(dir.path(), 1, kState);
  uint64_t step = 1;
  for (const std::string contents : {std::string(), std::string("dcp-store x\n"), std::string("\0\0\0", 3)}) {
    if (contents.empty()) fs::remove(storage::MarkerPath(dir.path()));
    else std::ofstream(storage::MarkerPath(dir.path()), std::ios::trunc) << contents;
    CHECK(Load(dir.path(), 1, kState) == "");
    SaveReport report;
    REQUIRE_OK(PutFresh(dir.path(), ++step, kState, &report));
    std::ifstream in(storage::MarkerPath(dir.path()));
    std::string marker((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(marker == storage::MarkerContents());
  }
  // A marker naming a format this build does not know is refused, not guessed at.
  std::ofstream(storage::MarkerPath(dir.path()), std::ios::trunc) << "dcp-store 7\n";
  CHECK_THAT(Store::Open(dir.path(), nullptr).status(),
             StatusIs(StatusCode::kFailedPrecondition, "has format version 7; this build reads version 1"));
  // An empty directory of someone else's with no manifests is still not a store.
  testing::TempDir other;
  fs::create_directories(other.Sub("steps"));
  std::ofstream(other.Sub("notes.txt")) << "mine";
  CHECK_THAT(Store::Open(other.path(), nullptr).status(), StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
}

}  // namespace
}  // namespace dcp
