// Copyright (c) dcp authors.
// Tests of engine/store/rocksdb_rank_store.cc: what is particular to the RocksDB
// backend (files on disk, block checksums, secondary instances). What every
// backend must do is in rank_store_test.cc.

#include "engine/store/rank_store.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/key_layout.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::storage {
namespace {

namespace fs = std::filesystem;
using dcp::testing::StatusIs;
using dcp::testing::TempDir;

std::unique_ptr<RankStore> OpenStore(const std::string& path, uint32_t rank, RankStore::Mode mode) {
  return ValueOrDie(RankStore::Open(path, rank, mode));
}

std::string ValueFor(uint64_t i, size_t size) {
  std::string v(size, '\0');
  for (size_t j = 0; j < size; ++j) v[j] = static_cast<char>((i * 131 + j * 7) & 0xff);
  return v;
}

// Record i of generation g; keys increase with i.
std::string Key(uint64_t generation, size_t i) {
  char name[16];
  std::snprintf(name, sizeof(name), "t%04zu", i);
  return ChunkRecordKey(generation, name, {0});
}

// Writes records Key(generation, i) = ValueFor(i, sizes[i]) in one bulk write.
Status WriteRecords(RankStore* store, std::string_view name, uint64_t generation, const std::vector<size_t>& sizes) {
  auto w = store->NewBulkWriter(name);
  if (!w.ok()) return w.status();
  for (size_t i = 0; i < sizes.size(); ++i) {
    DCP_RETURN_IF_ERROR((*w)->Add(Key(generation, i), ValueFor(i, sizes[i])));
  }
  return (*w)->Commit();
}

// Status of Get, and the value when found.
Status Read(const RankStore& store, const std::string& key, std::string* value) {
  PinnedValue v;
  const Status s = store.Get(key, &v);
  if (s.ok()) value->assign(v.view());
  return s;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST_CASE("Bulk-written records are readable after Commit", "[store]") {
  TempDir tmp;
  const std::string path = tmp.Sub("ranks/rank-00003");
  auto store = OpenStore(path, 3, RankStore::Mode::kWrite);
  CHECK(store->rank() == 3);
  CHECK(store->path() == path);
  CHECK(store->mode() == RankStore::Mode::kWrite);

  const std::vector<size_t> sizes = {0, 1, 100, 64 << 10, 1 << 20, 3, 200000};
  auto w = ValueOrDie(store->NewBulkWriter("0000000000000001"));
  for (size_t i = 0; i < sizes.size(); ++i) {
    REQUIRE_OK(w->Add(Key(1, i), ValueFor(i, sizes[i])));
  }
  CHECK(w->records() == sizes.size());
  REQUIRE_OK(w->Commit());
  w.reset();

  PinnedValue v;
  for (size_t i = 0; i < sizes.size(); ++i) {
    INFO("record " << i);
    REQUIRE_OK(store->Get(Key(1, i), &v));  // one PinnedValue reused
    CHECK(v.view() == ValueFor(i, sizes[i]));
  }
  // The ingested table file left the ingest directory.
  CHECK(Entries(RankIngestDir(path)).empty());

  // Records are durable: a new writer instance sees them.
  store.reset();
  store = OpenStore(path, 3, RankStore::Mode::kWrite);
  std::string got;
  REQUIRE_OK(Read(*store, Key(1, 4), &got));
  CHECK(got == ValueFor(4, sizes[4]));
}

TEST_CASE("Get of a missing key is NotFound naming the key, rank and path", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), 7, RankStore::Mode::kWrite);
  std::string got;
  const Status s = Read(*store, "0000000000000001/c/missing@0", &got);
  CHECK_THAT(s, StatusIs(StatusCode::kNotFound, "record '0000000000000001/c/missing@0' not found in rank store 7"));
  CHECK_THAT(s, StatusIs(StatusCode::kNotFound, tmp.path()));
  REQUIRE_OK(WriteRecords(store.get(), "g1", 1, {10, 10}));
  CHECK_THAT(Read(*store, Key(1, 2), &got), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(Read(*store, Key(2, 0), &got), StatusIs(StatusCode::kNotFound));
}

// Flips a bit of the byte 10 bytes into `needle` in the table file of the
// store at `path` that holds it; false if none does.
bool FlipByteAfter(const std::string& path, const std::string& needle) {
  bool flipped = false;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() != ".sst") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    const size_t pos = bytes.find(needle);
    if (pos == std::string::npos) continue;
    bytes[pos + 10] ^= 0x40;
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc).write(bytes.data(),
                                                                       static_cast<std::streamsize>(bytes.size()));
    flipped = true;
  }
  return flipped;
}

TEST_CASE("A damaged record fails its block checksum; its neighbours still read", "[store]") {
  TempDir tmp;
  const std::string path = tmp.Sub("rank-00000");
  {
    auto store = OpenStore(path, 0, RankStore::Mode::kWrite);
    REQUIRE_OK(WriteRecords(store.get(), "g1", 1, {100, 200000, 100}));
  }
  // Flip one byte in the middle of record 1's value (a block of its own).
  REQUIRE(FlipByteAfter(path, ValueFor(1, 200000).substr(100000, 64)));
  // A fresh instance, so no block of the file is cached.
  auto store = OpenStore(path, 0, RankStore::Mode::kRead);
  PinnedValue v;
  CHECK_THAT(store->Get(Key(1, 1), &v), StatusIs(StatusCode::kDataLoss, "checksum mismatch"));
  // A second read fails the same way (a failed read caches nothing).
  CHECK_THAT(store->Get(Key(1, 1), &v), StatusIs(StatusCode::kDataLoss, "checksum mismatch"));
  // The undamaged records, in blocks of their own, read.
  REQUIRE_OK(store->Get(Key(1, 0), &v));
  CHECK(v.view() == ValueFor(0, 100));
  REQUIRE_OK(store->Get(Key(1, 2), &v));
  CHECK(v.view() == ValueFor(2, 100));
}

TEST_CASE("A damaged block in a run of reads fails its records only; the run goes on past it", "[store]") {
  TempDir tmp;
  const std::string path = tmp.Sub("rank-00000");
  const std::vector<size_t> sizes = {100, 100, 200000, 100, 30000, 100};
  {
    auto store = OpenStore(path, 0, RankStore::Mode::kWrite);
    REQUIRE_OK(WriteRecords(store.get(), "g1", 1, sizes));
  }
  // Flip one byte of record 2 (a block of its own).
  REQUIRE(FlipByteAfter(path, ValueFor(2, 200000).substr(100000, 64)));
  for (uint64_t readahead : {uint64_t{0}, uint64_t{64} << 10, uint64_t{1} << 20}) {
    CAPTURE(readahead);
    auto store = OpenStore(path, 0, RankStore::Mode::kRead);
    std::vector<std::string> keys;
    for (size_t i = 0; i < sizes.size(); ++i) keys.push_back(Key(1, i));
    std::vector<Status> got(keys.size());
    REQUIRE_OK(store->ReadRun(keys, readahead, [&](size_t i, const Status& s, std::string_view value) {
      got[i] = s;
      if (s.ok()) CHECK(value == ValueFor(i, sizes[i]));
      return Status::OK();
    }));
    for (size_t i = 0; i < keys.size(); ++i) {
      CAPTURE(i);
      if (i == 2) {
        CHECK_THAT(got[i], StatusIs(StatusCode::kDataLoss, "checksum mismatch"));
        CHECK_THAT(got[i], StatusIs(StatusCode::kDataLoss, "record '" + keys[2] + "'"));
      } else {
        CHECK_OK(got[i]);
      }
    }
  }
}

TEST_CASE("Several bulk writes accumulate and a later write of a key wins", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
  REQUIRE_OK(WriteRecords(store.get(), "g2", 2, {5, 6, 7}));
  REQUIRE_OK(WriteRecords(store.get(), "g1", 1, {8, 9}));  // key range below the first file
  {
    auto w = ValueOrDie(store->NewBulkWriter("g2-again"));
    REQUIRE_OK(w->Add(Key(2, 1), "replaced"));
    REQUIRE_OK(w->Commit());
  }
  std::string got;
  REQUIRE_OK(Read(*store, Key(1, 1), &got));
  CHECK(got == ValueFor(1, 9));
  REQUIRE_OK(Read(*store, Key(2, 0), &got));
  CHECK(got == ValueFor(0, 5));
  REQUIRE_OK(Read(*store, Key(2, 1), &got));
  CHECK(got == "replaced");
  REQUIRE_OK(Read(*store, Key(2, 2), &got));
  CHECK(got == ValueFor(2, 7));
}

TEST_CASE("A second writer on the same store is refused", "[store]") {
  TempDir tmp;
  auto first = OpenStore(tmp.path(), 2, RankStore::Mode::kWrite);
  const auto second = RankStore::Open(tmp.path(), 2, RankStore::Mode::kWrite);
  CHECK_THAT(second.status(), StatusIs(StatusCode::kIOError, "cannot open rank store 2 at '" + tmp.path() + "'"));
  // The first writer is unaffected.
  REQUIRE_OK(WriteRecords(first.get(), "g", 1, {3}));
  first.reset();
  CHECK_OK(RankStore::Open(tmp.path(), 2, RankStore::Mode::kWrite).status());
}

TEST_CASE("A reader sees new commits only after CatchUp", "[store]") {
  TempDir tmp;
  auto writer = OpenStore(tmp.path(), 1, RankStore::Mode::kWrite);
  REQUIRE_OK(WriteRecords(writer.get(), "g1", 1, {11, 12}));

  auto reader = OpenStore(tmp.path(), 1, RankStore::Mode::kRead);
  CHECK(reader->mode() == RankStore::Mode::kRead);
  std::string got;
  REQUIRE_OK(Read(*reader, Key(1, 1), &got));  // committed before the reader opened
  CHECK(got == ValueFor(1, 12));

  REQUIRE_OK(WriteRecords(writer.get(), "g2", 2, {21, 22, 23}));
  CHECK_THAT(Read(*reader, Key(2, 0), &got), StatusIs(StatusCode::kNotFound));
  REQUIRE_OK(reader->CatchUp());
  REQUIRE_OK(Read(*reader, Key(2, 0), &got));
  CHECK(got == ValueFor(0, 21));
  REQUIRE_OK(Read(*reader, Key(2, 2), &got));
  CHECK(got == ValueFor(2, 23));
  REQUIRE_OK(Read(*reader, Key(1, 0), &got));
  CHECK(got == ValueFor(0, 11));

  // Readers cannot write; CatchUp on the writer is a no-op.
  CHECK_THAT(reader->NewBulkWriter("x").status(),
             StatusIs(StatusCode::kFailedPrecondition, "rank store 1 at '" + tmp.path() + "' is open read-only"));
  CHECK_OK(writer->CatchUp());

  // The reader keeps working after the writer closes.
  writer.reset();
  REQUIRE_OK(reader->CatchUp());
  REQUIRE_OK(Read(*reader, Key(2, 1), &got));
  CHECK(got == ValueFor(1, 22));
}

TEST_CASE("Several readers may read concurrently", "[store]") {
  TempDir tmp;
  std::vector<size_t> sizes(64, 1000);
  {
    auto writer = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
    REQUIRE_OK(WriteRecords(writer.get(), "g", 5, sizes));
  }
  auto a = OpenStore(tmp.path(), 0, RankStore::Mode::kRead);
  auto b = OpenStore(tmp.path(), 0, RankStore::Mode::kRead);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const RankStore& s = t % 2 ? *a : *b;
      for (size_t i = 0; i < sizes.size(); ++i) {
        std::string got;
        if (!Read(s, Key(5, i), &got).ok() || got != ValueFor(i, 1000)) {
          ++mismatches[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("Opening a missing store for reading is NotFound", "[store]") {
  TempDir tmp;
  const std::string path = tmp.Sub("ranks/rank-00009");
  CHECK_THAT(RankStore::Open(path, 9, RankStore::Mode::kRead).status(),
             StatusIs(StatusCode::kNotFound, "rank store 9 at '" + path + "' does not exist"));
  CHECK_FALSE(fs::exists(path));
  // A directory that holds no database is not a store either.
  fs::create_directories(path);
  const auto r = RankStore::Open(path, 9, RankStore::Mode::kRead);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status(), StatusIs(r.status().code(), "cannot open rank store 9"));
  CHECK(Entries(path).empty());
}

TEST_CASE("Readers write nothing: not into the store, not into their scratch directory", "[store]") {
  TempDir tmp;
  {
    auto writer = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
    auto w = ValueOrDie(writer->NewBulkWriter("g1"));
    REQUIRE_OK(w->Add("k", "v"));
    REQUIRE_OK(w->Commit());
  }
  const std::string store_path = tmp.path();
  auto store_files = Entries(store_path);
  std::sort(store_files.begin(), store_files.end());
  const std::string secondary = SecondaryScratchDir();
  {
    auto reader = OpenStore(tmp.path(), 0, RankStore::Mode::kRead);
    PinnedValue v;
    REQUIRE_OK(reader->Get("k", &v));
    REQUIRE_OK(reader->CatchUp());
    REQUIRE(fs::is_directory(secondary));
    CHECK(Entries(secondary).empty());
  }
  auto after = Entries(store_path);
  std::sort(after.begin(), after.end());
  CHECK(after == store_files);
  CHECK(Entries(secondary).empty());
}

TEST_CASE("An abandoned BulkWriter leaves nothing behind", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), 4, RankStore::Mode::kWrite);
  {
    auto w = ValueOrDie(store->NewBulkWriter("abandoned"));
    REQUIRE_OK(w->Add(Key(1, 0), "a"));
    REQUIRE_OK(w->Add(Key(1, 1), "b"));
    CHECK_FALSE(Entries(RankIngestDir(tmp.path())).empty());  // the table file is being built
  }
  CHECK(Entries(RankIngestDir(tmp.path())).empty());
  std::string got;
  CHECK_THAT(Read(*store, Key(1, 0), &got), StatusIs(StatusCode::kNotFound));
  // The store still takes writes.
  REQUIRE_OK(WriteRecords(store.get(), "next", 2, {4}));
  REQUIRE_OK(Read(*store, Key(2, 0), &got));
}

TEST_CASE("Keys out of order are refused and nothing is committed", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
  {
    auto w = ValueOrDie(store->NewBulkWriter("unordered"));
    REQUIRE_OK(w->Add("0000000000000001/c/b@0", "b"));
    CHECK_THAT(w->Add("0000000000000001/c/a@0", "a"),
               StatusIs(StatusCode::kInvalidArgument, "cannot write record '0000000000000001/c/a@0' to rank store 0"));
    CHECK_FALSE(w->Add("0000000000000001/c/b@0", "dup").ok());
  }
  CHECK(Entries(RankIngestDir(tmp.path())).empty());
  std::string got;
  CHECK_THAT(Read(*store, "0000000000000001/c/b@0", &got), StatusIs(StatusCode::kNotFound));
}

TEST_CASE("An empty BulkWriter commits as a no-op", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
  {
    auto w = ValueOrDie(store->NewBulkWriter("empty"));
    CHECK_OK(w->Commit());
    CHECK(w->records() == 0);
  }
  CHECK(Entries(RankIngestDir(tmp.path())).empty());
  REQUIRE_OK(WriteRecords(store.get(), "after", 1, {1}));
}

TEST_CASE("A writer removes stale table files of an interrupted put", "[store]") {
  TempDir tmp;
  { auto store = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite); }
  {
    std::ofstream stale(RankIngestDir(tmp.path()) + "/crashed.sst");
    stale << "half a table file";
  }
  auto store = OpenStore(tmp.path(), 0, RankStore::Mode::kWrite);
  CHECK(Entries(RankIngestDir(tmp.path())).empty());
}

}  // namespace
}  // namespace dcp::storage
