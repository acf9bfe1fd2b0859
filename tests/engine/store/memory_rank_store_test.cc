// Copyright (c) dcp authors.
// Tests of engine/store/memory_rank_store.cc beyond the conformance suite
// (rank_store_test.cc): sharing by path, zero-copy reads, crashes.

#include "engine/store/memory_rank_store.h"

#include <catch2/catch.hpp>

#include <string>

#include "engine/store/key_layout.h"
#include "tests/testing/status_matchers.h"

namespace dcp::storage {
namespace {

using dcp::testing::StatusIs;
using Mode = RankStore::Mode;

Status Put(RankStore* store, const std::string& key, const std::string& value) {
  DCP_ASSIGN_OR_RETURN(auto w, store->NewBulkWriter("w"));
  DCP_RETURN_IF_ERROR(w->Add(key, value));
  return w->Commit();
}

const std::string kA = ObjectRecordKey(1, "a");
const std::string kB = ObjectRecordKey(2, "b");

TEST_CASE("memory: stores are per path and per backend", "[store][memory]") {
  MemoryBackend one, two;
  auto a = ValueOrDie(one.Open("/x/rank-0", 0, Mode::kWrite, {}));
  auto b = ValueOrDie(one.Open("/x/rank-1", 1, Mode::kWrite, {}));
  REQUIRE_OK(Put(a.get(), kA, "in a"));
  PinnedValue v;
  CHECK_THAT(b->Get(kA, &v), StatusIs(StatusCode::kNotFound));
  CHECK(one.Exists("/x/rank-0"));
  CHECK_FALSE(two.Exists("/x/rank-0"));
  CHECK_THAT(two.Open("/x/rank-0", 0, Mode::kRead, {}).status(), StatusIs(StatusCode::kNotFound));
  auto other_writer = ValueOrDie(two.Open("/x/rank-0", 0, Mode::kWrite, {}));  // its own lock
  CHECK_THAT(other_writer->Get(kA, &v), StatusIs(StatusCode::kNotFound));
}

TEST_CASE("memory: a read pins the stored value, no copy", "[store][memory]") {
  MemoryBackend memory;
  auto writer = ValueOrDie(memory.Open("/r", 0, Mode::kWrite, {}));
  REQUIRE_OK(Put(writer.get(), kA, std::string(1 << 20, 'v')));
  auto reader = ValueOrDie(memory.Open("/r", 0, Mode::kRead, {}));
  PinnedValue x, y;
  REQUIRE_OK(writer->Get(kA, &x));
  REQUIRE_OK(reader->Get(kA, &y));
  CHECK(x.view().data() == y.view().data());  // both view the one stored string
  // The pin keeps the bytes even when the record is dropped and the store closed.
  REQUIRE_OK(writer->DropGeneration(1));
  writer.reset();
  reader.reset();
  CHECK(x.view() == std::string(1 << 20, 'v'));
}

TEST_CASE("memory: a crash kills every instance, keeps what was committed and loses the rest",
          "[store][memory][crash]") {
  MemoryBackend memory;
  auto writer = ValueOrDie(memory.Open("/r", 3, Mode::kWrite, {}));
  auto reader = ValueOrDie(memory.Open("/r", 3, Mode::kRead, {}));
  REQUIRE_OK(Put(writer.get(), kA, "durable"));
  auto pending = ValueOrDie(writer->NewBulkWriter("pending"));
  REQUIRE_OK(pending->Add(kB, "lost"));

  memory.Crash();
  PinnedValue v;
  CHECK_THAT(writer->Get(kA, &v), StatusIs(StatusCode::kIOError, "rank store 3 at '/r': the store crashed"));
  CHECK_THAT(reader->Get(kA, &v), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(reader->CatchUp(), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(pending->Commit(), StatusIs(StatusCode::kIOError, "the batch is lost"));
  CHECK_THAT(writer->NewBulkWriter("x").status(), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(writer->TableFiles().status(), StatusIs(StatusCode::kIOError));

  // The dead writer's lock is gone: a fresh writer opens while it still exists.
  auto fresh = ValueOrDie(memory.Open("/r", 3, Mode::kWrite, {}));
  REQUIRE_OK(fresh->Get(kA, &v));
  CHECK(v.view() == "durable");
  CHECK_THAT(fresh->Get(kB, &v), StatusIs(StatusCode::kNotFound));
  CHECK(ValueOrDie(fresh->TableFiles()).size() == 1);
  // Destroying the dead writer does not release the fresh writer's lock.
  writer.reset();
  CHECK_THAT(memory.Open("/r", 3, Mode::kWrite, {}).status(), StatusIs(StatusCode::kIOError, "cannot open"));
}

TEST_CASE("memory: stores outlive their backend", "[store][memory]") {
  std::unique_ptr<RankStore> store;
  {
    MemoryBackend memory;
    store = ValueOrDie(memory.Open("/r", 0, Mode::kWrite, {}));
  }
  REQUIRE_OK(Put(store.get(), kA, "still here"));
  PinnedValue v;
  REQUIRE_OK(store->Get(kA, &v));
  CHECK(v.view() == "still here");
}

}  // namespace
}  // namespace dcp::storage
