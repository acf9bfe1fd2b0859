// Copyright (c) dcp authors.

#include "engine/query/store_set.h"

#include <catch2/catch.hpp>

#include "engine/store/fault_rank_store.h"
#include "engine/store/key_layout.h"
#include "engine/store/memory_rank_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::query {
namespace {

using Op = storage::FaultBackend::Op;

void Write(storage::RankStore* store, const std::string& key, const std::string& value, const std::string& name) {
  auto w = ValueOrDie(store->NewBulkWriter(name));
  REQUIRE_OK(w->Add(key, value));
  REQUIRE_OK(w->Commit());
}

// On RocksDB: secondary instances really do see only what they caught up with.
TEST_CASE("read instances catch up with records committed after they opened", "[query]") {
  testing::TempDir dir;
  auto writer = ValueOrDie(
      storage::RankStore::Open(storage::RankStorePath(dir.path(), 2), 2, storage::RankStore::Mode::kWrite));
  Write(writer.get(), "0000000000000001/c/a@0", "one", "g1");
  StoreSet stores(dir.path(), nullptr);
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(2, 1, "0000000000000001/c/a@0", &v));
  CHECK(v.view() == "one");
  Write(writer.get(), "0000000000000002/c/a@0", "two", "g2");
  // A newer generation triggers a catch-up...
  REQUIRE_OK(stores.Get(2, 2, "0000000000000002/c/a@0", &v));
  CHECK(v.view() == "two");
  Write(writer.get(), "0000000000000003/c/a@0", "three", "g3");
  // ...and so does an unexpectedly missing record, even for an older generation.
  REQUIRE_OK(stores.Get(2, 1, "0000000000000003/c/a@0", &v));
  CHECK(v.view() == "three");
  REQUIRE_THAT(stores.Get(2, 3, "0000000000000009/c/zz@0", &v), testing::StatusIs(StatusCode::kNotFound));
  REQUIRE_THAT(stores.Get(5, 3, "x", &v), testing::StatusIs(StatusCode::kNotFound, "rank store 5"));
}

// On RocksDB, whose runs read with an iterator of the instance's version.
TEST_CASE("a run of reads on a stale instance catches up for its missing records; a missing store fails each",
          "[query]") {
  testing::TempDir dir;
  auto writer = ValueOrDie(
      storage::RankStore::Open(storage::RankStorePath(dir.path(), 2), 2, storage::RankStore::Mode::kWrite));
  Write(writer.get(), "0000000000000001/c/a@0", "one", "g1");
  StoreSet stores(dir.path(), nullptr);
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(2, 1, "0000000000000001/c/a@0", &v));  // opens the read instance
  Write(writer.get(), "0000000000000003/c/b@0", "three", "g3");
  // Generation 1 was seen, so the run starts without catching up; its miss of
  // the newer record catches up and finds it.
  const std::vector<std::string> keys = {"0000000000000001/c/a@0", "0000000000000001/c/zz@0",
                                         "0000000000000003/c/b@0"};
  std::vector<std::string> got;
  REQUIRE_OK(stores.ReadRun(2, 1, keys, 0, [&](size_t i, const Status& s, std::string_view value) {
    CHECK(i == got.size());
    got.push_back(s.ok() ? std::string(value) : s.IsNotFound() ? "<missing>" : s.ToString());
    return Status::OK();
  }));
  CHECK(got == std::vector<std::string>{"one", "<missing>", "three"});
  got.clear();
  REQUIRE_OK(stores.ReadRun(5, 1, keys, 0, [&](size_t, const Status& s, std::string_view) {
    got.push_back(s.ToString());
    return Status::OK();
  }));
  REQUIRE(got.size() == 3);
  CHECK_THAT(got[2], Catch::Contains("rank store 5"));
}

TEST_CASE("a miss catches up once per generation, then misses of that generation are final", "[query]") {
  // verify of a store that lost 40k records took a minute when every miss
  // caught up with the writer. The catch-ups are counted by a fault backend
  // that injects nothing.
  storage::MemoryBackend memory;
  storage::FaultBackend counting(&memory);
  const std::string root = "/memory/root";
  auto writer =
      ValueOrDie(memory.Open(storage::RankStorePath(root, 1), 1, storage::RankStore::Mode::kWrite, {}));
  Write(writer.get(), "0000000000000001/c/a@0", "one", "g1");
  StoreSet stores(root, nullptr, &counting);
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(1, 1, "0000000000000001/c/a@0", &v));
  CHECK(counting.calls(Op::kOpen) == 1);
  CHECK(counting.calls(Op::kCatchUp) == 0);  // just opened: nothing to catch up with
  REQUIRE_OK(stores.Get(1, 1, "0000000000000001/c/a@0", &v));
  CHECK(counting.calls(Op::kCatchUp) == 0);  // a hit of a generation already seen
  // The first miss of generation 1 catches up once (and checks the metadata
  // once: the store is not damaged, so the miss is NotFound)...
  REQUIRE_THAT(stores.Get(1, 1, "0000000000000001/c/lost@0", &v), testing::StatusIs(StatusCode::kNotFound));
  CHECK(counting.calls(Op::kCatchUp) == 1);
  CHECK(counting.calls(Op::kCheckMetadata) == 1);
  // ...later misses of generation 1 do not.
  for (int i = 0; i < 10; ++i) {
    REQUIRE_THAT(stores.Get(1, 1, "0000000000000001/c/lost" + std::to_string(i) + "@0", &v),
                 testing::StatusIs(StatusCode::kNotFound));
  }
  CHECK(counting.calls(Op::kCatchUp) == 1);
  CHECK(counting.calls(Op::kCheckMetadata) == 1);
  // A read of a newer generation catches up before it reads, once.
  Write(writer.get(), "0000000000000002/c/a@0", "two", "g2");
  REQUIRE_OK(stores.Get(1, 2, "0000000000000002/c/a@0", &v));
  CHECK(v.view() == "two");
  CHECK(counting.calls(Op::kCatchUp) == 2);
  REQUIRE_OK(stores.Get(1, 2, "0000000000000002/c/a@0", &v));
  CHECK(counting.calls(Op::kCatchUp) == 2);
  CHECK(counting.calls(Op::kOpen) == 1);  // one read instance per rank, reused
}

TEST_CASE("a store that cannot be read fails with its error, not as a missing record", "[query]") {
  storage::MemoryBackend memory;
  storage::FaultBackend fault(&memory);
  const std::string root = "/memory/root";
  auto writer =
      ValueOrDie(memory.Open(storage::RankStorePath(root, 3), 3, storage::RankStore::Mode::kWrite, {}));
  Write(writer.get(), "0000000000000001/c/a@0", "one", "g1");
  StoreSet stores(root, nullptr, &fault);
  storage::PinnedValue v;
  fault.FailAt(Op::kOpen, 1, 3);
  REQUIRE_THAT(stores.Get(3, 1, "0000000000000001/c/a@0", &v),
               testing::StatusIs(StatusCode::kIOError, "injected I/O error in open #1 of rank store 3"));
  // The next call opens it again.
  REQUIRE_OK(stores.Get(3, 1, "0000000000000001/c/a@0", &v));
  fault.FailAt(Op::kGet, 1, 3);
  REQUIRE_THAT(stores.Get(3, 1, "0000000000000001/c/a@0", &v),
               testing::StatusIs(StatusCode::kIOError, "injected I/O error in get #1 of rank store 3"));
  // A damaged store (its metadata check fails) turns a miss into data loss naming the damage.
  fault.FailAt(Op::kCheckMetadata, 1, 3);
  REQUIRE_THAT(stores.Get(3, 1, "0000000000000001/c/gone@0", &v),
               testing::StatusIs(StatusCode::kDataLoss, "record '0000000000000001/c/gone@0' is lost: injected"));
}

TEST_CASE("the process's own writer instance serves its rank", "[query]") {
  storage::MemoryBackend memory;
  storage::FaultBackend nothing_opened(&memory);
  auto writer = ValueOrDie(
      memory.Open(storage::RankStorePath("/memory/root", 0), 0, storage::RankStore::Mode::kWrite, {}));
  StoreSet stores("/memory/root", writer.get(), &nothing_opened);
  Write(writer.get(), "k", "v", "g");
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(0, 0, "k", &v));
  CHECK(v.view() == "v");
  CHECK(nothing_opened.calls(Op::kOpen) == 0);
}

}  // namespace
}  // namespace dcp::query
