// Copyright (c) dcp authors.
// Tests of engine/store/rank_store.cc on damaged rank stores: a writer never
// lets RocksDB discard what it finds, Repair deletes nothing and recovers what
// is intact, and a salvage instance reads what is left.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine/store/key_layout.h"
#include "engine/store/rank_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::storage {
namespace {

namespace fs = std::filesystem;
using dcp::testing::StatusIs;
using dcp::testing::TempDir;

// Starts with a tag naming the record, so a test can find it in a file.
std::string ValueFor(uint64_t generation, size_t i) {
  std::string v(20000 + i * 100, '\0');  // a table block each
  for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((generation * 31 + i * 131 + j * 7) & 0xff);
  const std::string tag = "<record " + std::to_string(generation) + "." + std::to_string(i) + ">";
  return v.replace(0, tag.size(), tag);
}

std::string Key(uint64_t generation, size_t i) {
  char name[16];
  std::snprintf(name, sizeof(name), "t%04zu", i);
  return ChunkRecordKey(generation, name, {0});
}

// Generation g holds records 0..n-1, ingested as one table file.
void WriteGeneration(RankStore* store, uint64_t generation, size_t n) {
  auto w = ValueOrDie(store->NewBulkWriter("g" + std::to_string(generation)));
  for (size_t i = 0; i < n; ++i) REQUIRE_OK(w->Add(Key(generation, i), ValueFor(generation, i)));
  REQUIRE_OK(w->Commit());
}

// A store with generations 1, 2 and 3 of 4 records each, one table file each.
std::string MakeStore(const TempDir& tmp) {
  const std::string path = tmp.Sub("rank-00000");
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  for (uint64_t g = 1; g <= 3; ++g) WriteGeneration(store.get(), g, 4);
  return path;
}

// Which of generation g's records read back intact from `store`.
std::vector<bool> Readable(const RankStore& store, uint64_t generation, size_t n = 4) {
  std::vector<bool> ok;
  for (size_t i = 0; i < n; ++i) {
    PinnedValue v;
    ok.push_back(store.Get(Key(generation, i), &v).ok() && v.view() == ValueFor(generation, i));
  }
  return ok;
}

const std::vector<bool> kAll(4, true), kNone(4, false);

std::vector<std::string> TableFiles(const std::string& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".sst") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The table file holding generation g's records (by its smallest key).
std::string FileOf(const std::string& path, uint64_t generation) {
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kRead));
  for (const auto& f : ValueOrDie(store->TableFiles())) {
    if (GenerationOfKey(f.smallest_key) == generation) return path + f.name;
  }
  FAIL("no table file for generation " << generation);
  return "";
}

// Every file under `dir`, recursively, with its size (to check that nothing
// was deleted or changed).
std::map<std::string, uintmax_t> Snapshot(const std::string& dir) {
  std::map<std::string, uintmax_t> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = e.file_size();
  }
  return files;
}

void RemoveWals(const std::string& path) {
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() == ".log") fs::remove(e.path());
  }
}

TEST_CASE("A writer finds CURRENT and the WAL missing: repaired, every record kept", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  const auto tables = TableFiles(path);
  fs::remove(path + "/CURRENT");
  RemoveWals(path);
  CHECK_THAT(RankStore::CheckMetadata(path, 0), StatusIs(StatusCode::kDataLoss, "rank store 0 at '" + path + "'"));
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  for (uint64_t g = 1; g <= 3; ++g) CHECK(Readable(*store, g) == kAll);
  CHECK(TableFiles(path) == tables);  // CURRENT named the intact MANIFEST again: nothing moved
  WriteGeneration(store.get(), 4, 2);  // and it takes new writes
  store.reset();
  REQUIRE_OK(RankStore::CheckMetadata(path, 0));
  auto reader = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kRead));
  CHECK(Readable(*reader, 1) == kAll);
  CHECK(Readable(*reader, 4, 2) == std::vector<bool>(2, true));
}

TEST_CASE("With repair off a damaged store is refused and left exactly as it was", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  fs::remove(path + "/CURRENT");
  const auto before = Snapshot(path);
  const Status s = RankStore::Open(path, 0, RankStore::Mode::kWrite, RankStoreOptions{.repair = false}).status();
  CHECK_THAT(s, StatusIs(StatusCode::kDataLoss, "rank store 0 at '" + path + "' is damaged"));
  CHECK_THAT(s, StatusIs(StatusCode::kDataLoss, "dcp-inspect ROOT repair"));
  CHECK(Snapshot(path) == before);
}

TEST_CASE("A MANIFEST lost: the database is rebuilt from its table files", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("MANIFEST-", 0) == 0 || n == "CURRENT") fs::remove(e.path());
  }
  auto report = ValueOrDie(RankStore::Repair(path, 0));
  CHECK(report.tables_recovered == 3);
  CHECK_FALSE(report.problem.empty());
  CHECK(report.action.find("rebuilt") != std::string::npos);
  REQUIRE_OK(RankStore::CheckMetadata(path, 0));
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  for (uint64_t g = 1; g <= 3; ++g) CHECK(Readable(*store, g) == kAll);
  CHECK(fs::exists(RankLostDir(path)));  // the old OPTIONS, IDENTITY, logs: kept
  CHECK_FALSE(fs::exists(RankRebuildDir(path)));
}

TEST_CASE("A table file lost: the writer rebuilds, the other generations stay readable", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  const std::string lost = FileOf(path, 2);
  fs::remove(lost);
  CHECK_THAT(RankStore::CheckMetadata(path, 0),
             StatusIs(StatusCode::kDataLoss, "is damaged: table file " + fs::path(lost).filename().string() +
                                                 " is missing"));

  // A reader first: its secondary instance sees nothing, a salvage instance
  // what is there.
  auto salvage = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kSalvage));
  CHECK(Readable(*salvage, 1) == kAll);
  CHECK(Readable(*salvage, 2) == kNone);
  CHECK(Readable(*salvage, 3) == kAll);
  salvage.reset();

  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  CHECK(Readable(*store, 1) == kAll);
  CHECK(Readable(*store, 2) == kNone);
  CHECK(Readable(*store, 3) == kAll);
  WriteGeneration(store.get(), 4, 4);
  CHECK(Readable(*store, 4) == kAll);
}

TEST_CASE("A truncated table file moves to lost/; its records are gone, nothing else", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  const std::string victim = FileOf(path, 1);
  fs::resize_file(victim, fs::file_size(victim) / 2);
  CHECK_THAT(RankStore::CheckMetadata(path, 0),
             StatusIs(StatusCode::kDataLoss, "table file " + fs::path(victim).filename().string() + " is " +
                                                 std::to_string(fs::file_size(victim)) + " bytes, its metadata says"));
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  CHECK(Readable(*store, 1) == kNone);
  CHECK(Readable(*store, 2) == kAll);
  CHECK(Readable(*store, 3) == kAll);
  CHECK(TableFiles(RankLostDir(path)) == std::vector<std::string>{fs::path(victim).filename().string()});
}

TEST_CASE("A damaged block: the rebuild keeps every record that reads back", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  // Damage record 1 of generation 2 (a block of its own), and the metadata.
  const std::string victim = FileOf(path, 2);
  std::string bytes;
  {
    std::ifstream in(victim, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t at = bytes.find("<record 2.1>");
  REQUIRE(at != std::string::npos);
  bytes[at + 500] ^= 0x10;
  std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) fs::remove(e.path());
  }
  auto report = ValueOrDie(RankStore::Repair(path, 0));
  CHECK(report.tables_recovered == 3);
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  CHECK(Readable(*store, 1) == kAll);
  // The records before the damaged block were copied out; the file moved to lost/.
  CHECK(Readable(*store, 2) == std::vector<bool>{true, false, false, false});
  CHECK(Readable(*store, 3) == kAll);
  CHECK(TableFiles(RankLostDir(path)).size() == 1);
}

TEST_CASE("Table files the metadata does not list are set aside, then repaired back", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  // A copy of generation 2's file under a number RocksDB never used: what a
  // put killed between linking its file and recording it leaves, or what a
  // damaged MANIFEST lost track of. RocksDB would delete it on open.
  const std::string stray = path + "/999999.sst";
  fs::copy_file(FileOf(path, 2), stray);
  {
    auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
    CHECK(Readable(*store, 2) == kAll);
  }
  CHECK_FALSE(fs::exists(stray));
  CHECK(TableFiles(RankQuarantineDir(path)) == std::vector<std::string>{"999999.sst"});
  // Repair brings it back and judges it by its contents.
  auto report = ValueOrDie(RankStore::Repair(path, 0));
  CHECK(report.tables_restored == 1);
  CHECK(TableFiles(RankQuarantineDir(path)).empty());
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  for (uint64_t g = 1; g <= 3; ++g) CHECK(Readable(*store, g) == kAll);
}

TEST_CASE("RocksDB's own table files (a collection's rewrite) are copied by a rebuild", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  {
    auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
    // Drop record 0 of generation 1 and compact: generation 1 is now in a file
    // RocksDB wrote itself (not an ingested one).
    REQUIRE_OK(store->RewriteGeneration(1, {Key(1, 0)}, {}));
  }
  fs::remove(path + "/CURRENT");
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) fs::remove(e.path());
  }
  auto report = ValueOrDie(RankStore::Repair(path, 0));
  CHECK(report.tables_recovered == 3);
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  CHECK(Readable(*store, 1) == std::vector<bool>{false, true, true, true});
  CHECK(Readable(*store, 2) == kAll);
  CHECK(Readable(*store, 3) == kAll);
}

TEST_CASE("An interrupted rebuild is finished by the next open", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  // What a repair killed after setting the table files aside leaves.
  fs::create_directories(RankRebuildDir(path));
  for (const auto& t : TableFiles(path)) fs::rename(path + "/" + t, RankRebuildDir(path) + "/" + t);
  auto store = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kWrite));
  for (uint64_t g = 1; g <= 3; ++g) CHECK(Readable(*store, g) == kAll);
  CHECK_FALSE(fs::exists(RankRebuildDir(path)));
}

TEST_CASE("Writers and readers leave no RocksDB info log behind", "[store]") {
  TempDir tmp;
  const std::string path = MakeStore(tmp);
  { auto reader = ValueOrDie(RankStore::Open(path, 0, RankStore::Mode::kRead)); }
  for (const auto& e : fs::directory_iterator(path)) CHECK(e.path().filename().string().rfind("LOG", 0) != 0);
}

}  // namespace
}  // namespace dcp::storage
