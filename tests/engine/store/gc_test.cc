// Copyright (c) dcp authors.
//
// Garbage collection of one rank store (engine/store/gc.h), including the
// leftovers of a collection that stopped half-way.

#include "engine/store/gc.h"

#include <catch2/catch.hpp>

#include "engine/base/fault_injection.h"
#include "engine/codec/frame.h"
#include "engine/store/fault_rank_store.h"
#include "engine/store/key_layout.h"
#include "engine/store/memory_rank_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::storage {
namespace {

using testing::StatusIs;

std::unique_ptr<RankStore> Writer(const std::string& path) {
  return ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
}

// Ingests records `keys` (values of 1 KiB) of generation `g` with their index.
void Put(RankStore* store, uint64_t g, const std::vector<std::string>& tensor_keys, const std::string& name) {
  auto w = ValueOrDie(store->NewBulkWriter(name));
  std::string index;
  for (const auto& k : tensor_keys) {
    const std::string rk = ChunkRecordKey(g, k, {0});
    REQUIRE_OK(w->Add(rk, std::string(1024, 'v')));
    index += rk + "\n";
  }
  REQUIRE_OK(w->Add(GenerationIndexKey(g, 0), codec::FrameBlob(kGenerationIndexMagic, 1, index)));
  REQUIRE_OK(w->Commit());
}

bool Has(const RankStore& store, const std::string& key) {
  PinnedValue v;
  return store.Get(key, &v).ok();
}

// The collection's logic, on every backend.
struct RocksDbEnv {
  testing::TempDir dir;
  std::unique_ptr<RankStore> Writer() { return storage::Writer(dir.path()); }
};
struct MemoryEnv {
  MemoryBackend memory;
  std::unique_ptr<RankStore> Writer() {
    return ValueOrDie(memory.Open("/memory/rank", 0, RankStore::Mode::kWrite, {}));
  }
};

TEMPLATE_TEST_CASE("dead generations go whole, live records stay, partly dead ones wait for the threshold", "[store]",
                   RocksDbEnv, MemoryEnv) {
  TestType env;
  auto store = env.Writer();
  Put(store.get(), 0x10000, {"a", "b", "c", "d"}, "g1");
  Put(store.get(), 0x20000, {"a", "b"}, "g2");
  LiveRecords live;
  // Generation 0x10000: 3 of 4 records live. Generation 0x20000: nothing.
  for (const char* k : {"a", "b", "c"}) live[0x10000][ChunkRecordKey(0x10000, k, {0})] = 1024 + 48;
  RankGcStats lazy;
  REQUIRE_OK(CollectRankStore(store.get(), live, 0.5, &lazy));
  CHECK(lazy.generations_removed == 1);
  CHECK(lazy.records_removed == 0);
  CHECK(lazy.bytes_pending > 0);
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x20000, "a", {0})));
  CHECK(Has(*store, ChunkRecordKey(0x10000, "d", {0})));  // dead, not yet reclaimed
  RankGcStats eager;
  REQUIRE_OK(CollectRankStore(store.get(), live, 0.0, &eager));
  CHECK(eager.records_removed == 1);
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x10000, "d", {0})));
  for (const char* k : {"a", "b", "c"}) CHECK(Has(*store, ChunkRecordKey(0x10000, k, {0})));
  RankGcStats again;
  REQUIRE_OK(CollectRankStore(store.get(), live, 0.0, &again));
  CHECK(again.records_removed == 0);
  CHECK(again.generations_removed == 0);
}

TEST_CASE("a collection that fails half-way leaves the store consistent; the next one finishes", "[store][fault]") {
  MemoryBackend memory;
  FaultBackend fault(&memory);
  auto store = ValueOrDie(fault.Open("/memory/rank", 0, RankStore::Mode::kWrite, {}));
  Put(store.get(), 0x10000, {"a", "b", "c", "d"}, "g1");
  Put(store.get(), 0x20000, {"a"}, "g2");
  Put(store.get(), 0x30000, {"a"}, "g3");
  LiveRecords live;
  live[0x10000][ChunkRecordKey(0x10000, "a", {0})] = 1024 + 48;
  // Generations go in order: first the rewrite of 0x10000 fails, changing nothing.
  fault.FailAt(FaultBackend::Op::kRewrite, 1);
  RankGcStats stats;
  REQUIRE_THAT(CollectRankStore(store.get(), live, 0.0, &stats),
               StatusIs(StatusCode::kIOError, "injected I/O error in rewrite #1 of rank store 0"));
  CHECK(Has(*store, ChunkRecordKey(0x10000, "d", {0})));
  CHECK(Has(*store, ChunkRecordKey(0x20000, "a", {0})));
  // Then the second drop fails: the rewrite and the first drop happened.
  fault.FailAt(FaultBackend::Op::kDrop, 2);
  RankGcStats second;
  REQUIRE_THAT(CollectRankStore(store.get(), live, 0.0, &second),
               StatusIs(StatusCode::kIOError, "injected I/O error in drop #2"));
  CHECK(second.records_removed == 3);
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x10000, "d", {0})));
  CHECK(Has(*store, ChunkRecordKey(0x10000, "a", {0})));
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x20000, "a", {0})));
  CHECK(Has(*store, ChunkRecordKey(0x30000, "a", {0})));
  // The next collection finishes the job.
  RankGcStats last;
  REQUIRE_OK(CollectRankStore(store.get(), live, 0.0, &last));
  CHECK(last.generations_removed == 1);
  CHECK(last.records_removed == 0);
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x30000, "a", {0})));
  CHECK(Has(*store, ChunkRecordKey(0x10000, "a", {0})));
  CHECK(ValueOrDie(store->TableFiles()).size() == 1);
}

// RocksDB only: level-0 leftovers and a range deletion logged but not flushed.
TEST_CASE("a drop interrupted after its range deletion is finished by the next collection", "[store]") {
  testing::TempDir dir;
  {
    auto store = Writer(dir.path());
    // Overlapping ingests of one generation stack up until they land in
    // level 0, which DeleteFilesInRange leaves alone.
    for (int i = 0; i < 8; ++i) {
      Put(store.get(), 0x30000, {"k" + std::to_string(i), "m" + std::to_string(i)}, "p" + std::to_string(i));
    }
    bool level0 = false;
    for (const auto& f : ValueOrDie(store->TableFiles())) level0 = level0 || f.level == 0;
    REQUIRE(level0);
    base::ArmFaultPoint("gc.after_range_delete", 0);
    RankGcStats stats;
    REQUIRE_THAT(CollectRankStore(store.get(), {}, 0.5, &stats),
                 StatusIs(StatusCode::kIOError, "injected fault at 'gc.after_range_delete'"));
    base::DisarmAllFaultPoints();
  }
  // Reopening flushes the logged range deletion into a table file whose
  // bounds are the generation's range, not record keys.
  auto store = Writer(dir.path());
  RankGcStats stats;
  REQUIRE_OK(CollectRankStore(store.get(), {}, 0.5, &stats));
  CHECK(stats.generations_removed == 1);
  CHECK(ValueOrDie(store->TableFiles()).empty());
  CHECK_FALSE(Has(*store, ChunkRecordKey(0x30000, "k7", {0})));
  CHECK(GenerationOfKey("0000000000030000/") == std::optional<uint64_t>(0x30000));
  CHECK(GenerationOfKey("00000000000300000") == std::optional<uint64_t>(0x30000));
  CHECK_FALSE(GenerationOfKey("0000000000030000x").has_value());
  CHECK_FALSE(GenerationOfKey("short").has_value());
}

}  // namespace
}  // namespace dcp::storage
