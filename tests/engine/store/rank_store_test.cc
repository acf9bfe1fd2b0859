// Copyright (c) dcp authors.
// The conformance suite of engine/store/rank_store.h: what every rank store
// backend must do, run against each (RocksDB on disk, memory). What is
// particular to one backend is in its own test (rocksdb_rank_store_test.cc,
// fault_rank_store_test.cc).

#include "engine/store/rank_store.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/store/key_layout.h"
#include "engine/store/memory_rank_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::storage {
namespace {

using dcp::testing::StatusIs;
using Mode = RankStore::Mode;

// One backend and a place for its stores.
struct RocksDbEnv {
  dcp::testing::TempDir tmp;
  RankStoreBackend* backend() { return DefaultBackend(); }
  std::string Path(uint32_t rank) const { return RankStorePath(tmp.path(), rank); }
};

struct MemoryEnv {
  MemoryBackend memory;
  RankStoreBackend* backend() { return &memory; }
  std::string Path(uint32_t rank) const { return RankStorePath("/memory/root", rank); }
};

template <typename Env>
std::unique_ptr<RankStore> OpenStore(Env& env, uint32_t rank, Mode mode) {
  return ValueOrDie(env.backend()->Open(env.Path(rank), rank, mode, {}));
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
Status WriteRecords(RankStore* store, uint64_t generation, const std::vector<size_t>& sizes) {
  DCP_ASSIGN_OR_RETURN(auto w, store->NewBulkWriter(PutIngestName(generation, 0)));
  for (size_t i = 0; i < sizes.size(); ++i) DCP_RETURN_IF_ERROR(w->Add(Key(generation, i), ValueFor(i, sizes[i])));
  return w->Commit();
}

Status Read(const RankStore& store, const std::string& key, std::string* value) {
  PinnedValue v;
  const Status s = store.Get(key, &v);
  if (s.ok()) value->assign(v.view());
  return s;
}

std::vector<std::string> ScanKeys(const RankStore& store, const std::string& begin, const std::string& end) {
  std::vector<std::string> keys;
  REQUIRE_OK(store.Scan(begin, end, [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return Status::OK();
  }));
  return keys;
}

#define BACKENDS RocksDbEnv, MemoryEnv

TEMPLATE_TEST_CASE("conformance: a bulk write is visible after Commit, all at once", "[store][conformance]",
                   BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 3, Mode::kWrite);
  CHECK(store->rank() == 3);
  CHECK(store->path() == env.Path(3));
  CHECK(store->mode() == Mode::kWrite);
  const std::vector<size_t> sizes = {0, 1, 100, 64 << 10, 3, 200000};
  auto w = ValueOrDie(store->NewBulkWriter(PutIngestName(1, 0)));
  for (size_t i = 0; i < sizes.size(); ++i) REQUIRE_OK(w->Add(Key(1, i), ValueFor(i, sizes[i])));
  CHECK(w->records() == sizes.size());
  std::string got;
  CHECK_THAT(Read(*store, Key(1, 0), &got), StatusIs(StatusCode::kNotFound));  // not before Commit
  REQUIRE_OK(w->Commit());
  for (size_t i = 0; i < sizes.size(); ++i) {
    REQUIRE_OK(Read(*store, Key(1, i), &got));
    CHECK(got == ValueFor(i, sizes[i]));
  }
  // The pinned view stays valid while the PinnedValue lives, across other reads.
  PinnedValue big;
  REQUIRE_OK(store->Get(Key(1, 5), &big));
  REQUIRE_OK(Read(*store, Key(1, 3), &got));
  CHECK(big.view() == ValueFor(5, sizes[5]));
  // Reading into the same PinnedValue again replaces the view.
  REQUIRE_OK(store->Get(Key(1, 1), &big));
  CHECK(big.view() == ValueFor(1, 1));
  CHECK_THAT(store->Get(Key(1, 99), &big), StatusIs(StatusCode::kNotFound));
  CHECK(big.view().empty());
}

TEMPLATE_TEST_CASE("conformance: Get of a missing key is NotFound naming the key, rank and path",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 7, Mode::kWrite);
  std::string got;
  const Status s = Read(*store, "0000000000000001/c/missing@0", &got);
  CHECK_THAT(s, StatusIs(StatusCode::kNotFound, "record '0000000000000001/c/missing@0' not found in rank store 7"));
  CHECK_THAT(s, StatusIs(StatusCode::kNotFound, env.Path(7)));
}

TEMPLATE_TEST_CASE("conformance: ReadRun reads keys in order, missing ones NotFound, across generations and files",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 2, Mode::kWrite);
  // Generation 1: 300 small records (many share a block) and a few large ones; generation 2: 5 more.
  std::vector<size_t> sizes(300, 700);
  sizes[17] = 200000;
  sizes[150] = 0;
  sizes[299] = 70000;
  REQUIRE_OK(WriteRecords(store.get(), 1, sizes));
  REQUIRE_OK(WriteRecords(store.get(), 2, {5, 6, 7, 8, 9}));
  auto reader = OpenStore(env, 2, Mode::kRead);
  for (const RankStore* s : {static_cast<const RankStore*>(store.get()), static_cast<const RankStore*>(reader.get())}) {
    for (uint64_t readahead : {uint64_t{0}, uint64_t{4096}, uint64_t{1} << 20}) {
      CAPTURE(s->mode() == Mode::kWrite, readahead);
      // Every third record of generation 1, one absent key between them, then generation 2.
      std::vector<std::string> keys;
      std::vector<std::string> want;  // "" for NotFound
      for (size_t i = 0; i < 300; i += 3) {
        keys.push_back(Key(1, i));
        want.push_back(ValueFor(i, sizes[i]));
        if (i == 150) {
          keys.push_back(Key(1, i) + "x");  // sorts between records 150 and 151
          want.push_back("");
        }
      }
      keys.push_back(Key(2, 1));
      want.push_back(ValueFor(1, 6));
      keys.push_back(Key(2, 7));  // past the last record
      want.push_back("");
      size_t calls = 0;
      REQUIRE_OK(s->ReadRun(keys, readahead, [&](size_t i, const Status& st, std::string_view value) {
        CHECK(i == calls++);
        if (want[i].empty() && keys[i] != Key(1, 150)) {
          CHECK_THAT(st, StatusIs(StatusCode::kNotFound, "record '" + keys[i] + "' not found in rank store 2"));
        } else {
          REQUIRE_OK(st);
          CHECK(value == want[i]);
        }
        return Status::OK();
      }));
      CHECK(calls == keys.size());
    }
  }
  // The first error fn returns stops the run and is returned.
  size_t calls = 0;
  CHECK_THAT(store->ReadRun({Key(1, 0), Key(1, 1), Key(1, 2)}, 0,
                            [&](size_t i, const Status&, std::string_view) -> Status {
                              ++calls;
                              return i == 1 ? Status::Internal("enough") : Status::OK();
                            }),
             StatusIs(StatusCode::kInternal, "enough"));
  CHECK(calls == 2);
  REQUIRE_OK(store->ReadRun({}, 0, [&](size_t, const Status&, std::string_view) -> Status {
    FAIL("called for no key");
    return Status::OK();
  }));
}

TEMPLATE_TEST_CASE("conformance: later bulk writes accumulate and a later write of a key wins",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 0, Mode::kWrite);
  REQUIRE_OK(WriteRecords(store.get(), 2, {5, 6, 7}));
  REQUIRE_OK(WriteRecords(store.get(), 1, {8, 9}));  // below the first
  {
    auto w = ValueOrDie(store->NewBulkWriter("again"));
    REQUIRE_OK(w->Add(Key(2, 1), "replaced"));
    REQUIRE_OK(w->Commit());
  }
  std::string got;
  REQUIRE_OK(Read(*store, Key(1, 1), &got));
  CHECK(got == ValueFor(1, 9));
  REQUIRE_OK(Read(*store, Key(2, 1), &got));
  CHECK(got == "replaced");
  REQUIRE_OK(Read(*store, Key(2, 2), &got));
  CHECK(got == ValueFor(2, 7));
}

TEMPLATE_TEST_CASE("conformance: a reader sees what was committed, and later commits after CatchUp",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto writer = OpenStore(env, 1, Mode::kWrite);
  REQUIRE_OK(WriteRecords(writer.get(), 1, {11, 12}));
  auto reader = OpenStore(env, 1, Mode::kRead);
  CHECK(reader->mode() == Mode::kRead);
  std::string got;
  REQUIRE_OK(Read(*reader, Key(1, 1), &got));
  CHECK(got == ValueFor(1, 12));
  REQUIRE_OK(WriteRecords(writer.get(), 2, {21, 22}));
  REQUIRE_OK(reader->CatchUp());
  REQUIRE_OK(Read(*reader, Key(2, 1), &got));
  CHECK(got == ValueFor(1, 22));
  // An uncommitted bulk write is invisible to readers too.
  auto w = ValueOrDie(writer->NewBulkWriter("pending"));
  REQUIRE_OK(w->Add(Key(3, 0), "x"));
  REQUIRE_OK(reader->CatchUp());
  CHECK_THAT(Read(*reader, Key(3, 0), &got), StatusIs(StatusCode::kNotFound));
  // Readers cannot write; CatchUp on the writer is a no-op.
  CHECK_THAT(reader->NewBulkWriter("x").status(),
             StatusIs(StatusCode::kFailedPrecondition, "rank store 1 at '" + env.Path(1) + "' is open read-only"));
  CHECK_THAT(reader->DropGeneration(1), StatusIs(StatusCode::kFailedPrecondition, "is open read-only"));
  CHECK_THAT(reader->RewriteGeneration(1, {}, {}), StatusIs(StatusCode::kFailedPrecondition, "is open read-only"));
  CHECK_OK(writer->CatchUp());
  // The reader keeps working after the writer closes.
  w.reset();
  writer.reset();
  REQUIRE_OK(reader->CatchUp());
  REQUIRE_OK(Read(*reader, Key(1, 0), &got));
  CHECK(got == ValueFor(0, 11));
}

TEMPLATE_TEST_CASE("conformance: one writer at a time; missing stores are NotFound", "[store][conformance]",
                   BACKENDS) {
  TestType env;
  RankStoreBackend* b = env.backend();
  CHECK_THAT(b->Open(env.Path(2), 2, Mode::kRead, {}).status(),
             StatusIs(StatusCode::kNotFound, "rank store 2 at '" + env.Path(2) + "' does not exist"));
  CHECK_THAT(b->Open(env.Path(2), 2, Mode::kSalvage, {}).status(), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(b->CheckMetadata(env.Path(2), 2), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(b->Repair(env.Path(2), 2).status(), StatusIs(StatusCode::kNotFound));
  auto first = OpenStore(env, 2, Mode::kWrite);
  CHECK_OK(b->CheckMetadata(env.Path(2), 2));  // a fresh store is consistent
  CHECK_THAT(b->Open(env.Path(2), 2, Mode::kWrite, {}).status(),
             StatusIs(StatusCode::kIOError, "cannot open rank store 2 at '" + env.Path(2) + "'"));
  REQUIRE_OK(WriteRecords(first.get(), 1, {3}));
  first.reset();
  auto second = OpenStore(env, 2, Mode::kWrite);
  std::string got;
  REQUIRE_OK(Read(*second, Key(1, 0), &got));
  CHECK_OK(b->CheckMetadata(env.Path(2), 2));
  second.reset();
  const auto report = ValueOrDie(b->Repair(env.Path(2), 2));
  CHECK(report.problem.empty());  // nothing was wrong
  auto salvage = OpenStore(env, 2, Mode::kSalvage);
  REQUIRE_OK(Read(*salvage, Key(1, 0), &got));
}

TEMPLATE_TEST_CASE("conformance: abandoned, unordered and empty bulk writes commit nothing", "[store][conformance]",
                   BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 4, Mode::kWrite);
  {
    auto w = ValueOrDie(store->NewBulkWriter("abandoned"));
    REQUIRE_OK(w->Add(Key(1, 0), "a"));
  }
  {
    auto w = ValueOrDie(store->NewBulkWriter("unordered"));
    REQUIRE_OK(w->Add(Key(2, 1), "b"));
    CHECK_THAT(w->Add(Key(2, 0), "a"),
               StatusIs(StatusCode::kInvalidArgument, "cannot write record '" + Key(2, 0) + "' to rank store 4"));
    CHECK_FALSE(w->Add(Key(2, 1), "dup").ok());
  }
  {
    auto w = ValueOrDie(store->NewBulkWriter("empty"));
    CHECK_OK(w->Commit());
    CHECK(w->records() == 0);
  }
  std::string got;
  CHECK_THAT(Read(*store, Key(1, 0), &got), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(Read(*store, Key(2, 1), &got), StatusIs(StatusCode::kNotFound));
  CHECK(ValueOrDie(store->TableFiles()).empty());
  CHECK(ValueOrDie(store->NewestGeneration()) == 0);
  REQUIRE_OK(WriteRecords(store.get(), 5, {4}));  // the store still takes writes
  REQUIRE_OK(Read(*store, Key(5, 0), &got));
}

TEMPLATE_TEST_CASE("conformance: Scan visits [begin, end) in key order and stops at an error",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 0, Mode::kWrite);
  REQUIRE_OK(WriteRecords(store.get(), 2, {1, 2, 3}));
  REQUIRE_OK(WriteRecords(store.get(), 1, {4, 5}));
  REQUIRE_OK(WriteRecords(store.get(), 3, {6}));
  const auto [b2, e2] = GenerationRange(2);
  CHECK(ScanKeys(*store, b2, e2) == std::vector<std::string>{Key(2, 0), Key(2, 1), Key(2, 2)});
  CHECK(ScanKeys(*store, GenerationRange(1).first, GenerationRange(3).second) ==
        std::vector<std::string>{Key(1, 0), Key(1, 1), Key(2, 0), Key(2, 1), Key(2, 2), Key(3, 0)});
  CHECK(ScanKeys(*store, Key(2, 1), Key(3, 0)) == std::vector<std::string>{Key(2, 1), Key(2, 2)});
  CHECK(ScanKeys(*store, GenerationRange(4).first, GenerationRange(4).second).empty());
  std::map<std::string, std::string> values;
  int calls = 0;
  const Status s = store->Scan(b2, e2, [&](std::string_view k, std::string_view v) -> Status {
    values[std::string(k)] = std::string(v);
    if (++calls == 2) return Status::DataLoss("stop here");
    return Status::OK();
  });
  CHECK_THAT(s, StatusIs(StatusCode::kDataLoss, "stop here"));
  CHECK(calls == 2);
  CHECK(values[Key(2, 1)] == ValueFor(1, 2));
}

TEMPLATE_TEST_CASE("conformance: one table file per bulk write, one generation each", "[store][conformance]",
                   BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 0, Mode::kWrite);
  CHECK(ValueOrDie(store->NewestGeneration()) == 0);
  REQUIRE_OK(WriteRecords(store.get(), 7, {100, 200}));
  REQUIRE_OK(WriteRecords(store.get(), 3, {300}));
  REQUIRE_OK(WriteRecords(store.get(), 5, {10, 20, 30}));
  auto files = ValueOrDie(store->TableFiles());
  REQUIRE(files.size() == 3);
  std::map<uint64_t, RankStore::TableFile> by_generation;
  for (const auto& f : files) {
    CHECK_FALSE(f.name.empty());
    CHECK(f.size > 0);
    const auto g = GenerationOfKey(f.smallest_key);
    REQUIRE(g.has_value());
    CHECK(GenerationOfKey(f.largest_key) == g);
    by_generation[*g] = f;
  }
  CHECK(by_generation.count(3) == 1);
  CHECK(by_generation[5].smallest_key == Key(5, 0));
  CHECK(by_generation[5].largest_key == Key(5, 2));
  CHECK(by_generation[7].size >= 300);  // sizes count the records' bytes
  CHECK(by_generation[3].size >= 300);
  CHECK(ValueOrDie(store->NewestGeneration()) == 7);
  // A reader lists the same files.
  auto reader = OpenStore(env, 0, Mode::kRead);
  CHECK(ValueOrDie(reader->TableFiles()).size() == 3);
  CHECK(ValueOrDie(reader->NewestGeneration()) == 7);
}

TEMPLATE_TEST_CASE("conformance: DropGeneration removes a generation's records and files only",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 0, Mode::kWrite);
  REQUIRE_OK(WriteRecords(store.get(), 1, {10, 10}));
  REQUIRE_OK(WriteRecords(store.get(), 2, {20, 20, 20}));
  REQUIRE_OK(WriteRecords(store.get(), 3, {30}));
  REQUIRE_OK(store->DropGeneration(2));
  std::string got;
  for (size_t i = 0; i < 3; ++i) CHECK_THAT(Read(*store, Key(2, i), &got), StatusIs(StatusCode::kNotFound));
  REQUIRE_OK(Read(*store, Key(1, 1), &got));
  CHECK(got == ValueFor(1, 10));
  REQUIRE_OK(Read(*store, Key(3, 0), &got));
  auto files = ValueOrDie(store->TableFiles());
  CHECK(files.size() == 2);
  for (const auto& f : files) CHECK(GenerationOfKey(f.smallest_key) != std::optional<uint64_t>(2));
  REQUIRE_OK(store->DropGeneration(3));
  CHECK(ValueOrDie(store->NewestGeneration()) == 1);
  REQUIRE_OK(store->DropGeneration(9));  // nothing there: a no-op
  CHECK(ValueOrDie(store->TableFiles()).size() == 1);
}

TEMPLATE_TEST_CASE("conformance: RewriteGeneration deletes and replaces records in one batch and frees the space",
                   "[store][conformance]", BACKENDS) {
  TestType env;
  auto store = OpenStore(env, 0, Mode::kWrite);
  REQUIRE_OK(WriteRecords(store.get(), 4, {10000, 10000, 10000, 10000}));
  REQUIRE_OK(WriteRecords(store.get(), 6, {50}));
  const uint64_t before = [&] {
    for (const auto& f : ValueOrDie(store->TableFiles())) {
      if (GenerationOfKey(f.smallest_key) == std::optional<uint64_t>(4)) return f.size;
    }
    return uint64_t{0};
  }();
  REQUIRE(before >= 40000);
  const std::string index = GenerationIndexKey(4, 0);
  REQUIRE_OK(store->RewriteGeneration(4, {Key(4, 0), Key(4, 2)}, {{index, "live: 1, 3"}}));
  std::string got;
  CHECK_THAT(Read(*store, Key(4, 0), &got), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(Read(*store, Key(4, 2), &got), StatusIs(StatusCode::kNotFound));
  REQUIRE_OK(Read(*store, Key(4, 1), &got));
  CHECK(got == ValueFor(1, 10000));
  REQUIRE_OK(Read(*store, index, &got));
  CHECK(got == "live: 1, 3");
  REQUIRE_OK(Read(*store, Key(6, 0), &got));
  uint64_t after = 0;
  int files_of_4 = 0;
  for (const auto& f : ValueOrDie(store->TableFiles())) {
    if (GenerationOfKey(f.smallest_key) != std::optional<uint64_t>(4)) continue;
    ++files_of_4;
    after += f.size;
    CHECK(GenerationOfKey(f.largest_key) == std::optional<uint64_t>(4));
    CHECK(f.level > 0);  // compacted: nothing left for a collection to finish
  }
  CHECK(files_of_4 == 1);
  CHECK(after < before - 15000);
  CHECK(ScanKeys(*store, GenerationRange(4).first, GenerationRange(4).second) ==
        std::vector<std::string>{Key(4, 1), Key(4, 3), index});
  REQUIRE_OK(store->CompactGeneration(4));
  REQUIRE_OK(Read(*store, Key(4, 3), &got));
}

}  // namespace
}  // namespace dcp::storage
