// Copyright (c) dcp authors.
// Tests of engine/store/fault_rank_store.cc: injected I/O errors per
// operation and rank, short writes, and crashes followed by recovery in the
// same process.

#include "engine/store/fault_rank_store.h"

#include <catch2/catch.hpp>

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
using Op = FaultBackend::Op;
using When = FaultBackend::When;

std::string Key(uint64_t generation, int i) { return ObjectRecordKey(generation, "o" + std::to_string(i)); }

// Commits Key(generation, 0..n-1) = "v<i>" in one bulk write.
Status Write(RankStore* store, uint64_t generation, int n) {
  DCP_ASSIGN_OR_RETURN(auto w, store->NewBulkWriter(PutIngestName(generation, 0)));
  for (int i = 0; i < n; ++i) DCP_RETURN_IF_ERROR(w->Add(Key(generation, i), "v" + std::to_string(i)));
  return w->Commit();
}

Status Read(const RankStore& store, const std::string& key) {
  PinnedValue v;
  return store.Get(key, &v);
}

TEST_CASE("fault: the nth call of an operation fails, on one rank or all", "[store][fault]") {
  MemoryBackend memory;
  FaultBackend fault(&memory);
  CHECK(fault.Name() == "fault(memory)");
  auto r0 = ValueOrDie(fault.Open("/s/rank-0", 0, Mode::kWrite, {}));
  auto r1 = ValueOrDie(fault.Open("/s/rank-1", 1, Mode::kWrite, {}));
  REQUIRE_OK(Write(r0.get(), 1, 2));
  REQUIRE_OK(Write(r1.get(), 1, 2));

  fault.FailAt(Op::kGet, 2, /*rank=*/1);
  CHECK_OK(Read(*r1, Key(1, 0)));
  CHECK_OK(Read(*r0, Key(1, 0)));  // rank 0's calls do not count for rank 1's rule
  CHECK_THAT(Read(*r1, Key(1, 1)),
             StatusIs(StatusCode::kIOError, "injected I/O error in get #2 of rank store 1 at '/s/rank-1'"));
  CHECK_OK(Read(*r1, Key(1, 1)));  // once only
  CHECK(fault.calls(Op::kGet) == 4);

  fault.FailAt(Op::kScan, 1, -1, FaultBackend::kForever);
  for (auto* s : {r0.get(), r1.get()}) {
    CHECK_THAT(s->Scan("", "~", [](std::string_view, std::string_view) { return Status::OK(); }),
               StatusIs(StatusCode::kIOError, "injected I/O error in scan"));
  }
  fault.FailAt(Op::kOpen, 1, 2);
  CHECK_THAT(fault.Open("/s/rank-2", 2, Mode::kWrite, {}).status(),
             StatusIs(StatusCode::kIOError, "injected I/O error in open #1 of rank store 2"));
  CHECK_FALSE(memory.Exists("/s/rank-2"));  // the failed call did nothing
  fault.FailAt(Op::kDrop, 1, 0);
  CHECK_THAT(r0->DropGeneration(1), StatusIs(StatusCode::kIOError, "injected I/O error in drop #1"));
  CHECK_OK(Read(*r0, Key(1, 0)));
  fault.Disarm();
  CHECK_OK(r0->Scan("", "~", [](std::string_view, std::string_view) { return Status::OK(); }));
  CHECK_OK(r0->DropGeneration(1));
  CHECK_THAT(Read(*r0, Key(1, 0)), StatusIs(StatusCode::kNotFound));
}

TEST_CASE("fault: a failed Add or Commit leaves nothing of the batch visible", "[store][fault]") {
  MemoryBackend memory;
  FaultBackend fault(&memory);
  auto store = ValueOrDie(fault.Open("/s", 0, Mode::kWrite, {}));
  fault.FailAt(Op::kAdd, 3);
  CHECK_THAT(Write(store.get(), 1, 5), StatusIs(StatusCode::kIOError, "injected I/O error in add #3"));
  fault.FailAt(Op::kCommit, 1);
  CHECK_THAT(Write(store.get(), 2, 5), StatusIs(StatusCode::kIOError, "injected I/O error in commit #1"));
  for (uint64_t g : {1, 2}) {
    for (int i = 0; i < 5; ++i) CHECK_THAT(Read(*store, Key(g, i)), StatusIs(StatusCode::kNotFound));
  }
  CHECK(ValueOrDie(store->TableFiles()).empty());
  REQUIRE_OK(Write(store.get(), 3, 5));  // the next commit goes through
  CHECK_OK(Read(*store, Key(3, 4)));
}

TEST_CASE("fault: a short write commits the first records of the batch and says so", "[store][fault]") {
  MemoryBackend memory;
  FaultBackend fault(&memory);
  auto store = ValueOrDie(fault.Open("/s", 4, Mode::kWrite, {}));
  REQUIRE_OK(Write(store.get(), 1, 3));
  fault.ShortWriteAt(/*keep=*/2, /*nth=*/1, /*rank=*/4);
  CHECK_THAT(Write(store.get(), 2, 5),
             StatusIs(StatusCode::kIOError, "short write to rank store 4 at '/s': only 2 of 5 records were committed"));
  CHECK_OK(Read(*store, Key(2, 0)));
  CHECK_OK(Read(*store, Key(2, 1)));
  for (int i = 2; i < 5; ++i) CHECK_THAT(Read(*store, Key(2, i)), StatusIs(StatusCode::kNotFound));
  // What made it is one table file of its generation, which a collection can drop.
  CHECK(ValueOrDie(store->TableFiles()).size() == 2);
  CHECK(ValueOrDie(store->NewestGeneration()) == 2);
  REQUIRE_OK(store->DropGeneration(2));
  CHECK_THAT(Read(*store, Key(2, 0)), StatusIs(StatusCode::kNotFound));
  CHECK_OK(Read(*store, Key(1, 2)));
}

TEST_CASE("fault: a crash before a commit loses the batch; a fresh store recovers the rest",
          "[store][fault][crash]") {
  MemoryBackend memory;
  FaultBackend fault(&memory, [&] { memory.Crash(); });
  auto writer = ValueOrDie(fault.Open("/s", 0, Mode::kWrite, {}));
  auto reader = ValueOrDie(fault.Open("/s", 0, Mode::kRead, {}));
  fault.CrashAt(Op::kCommit, 2);  // counted from here
  REQUIRE_OK(Write(writer.get(), 1, 2));
  CHECK_FALSE(fault.crashed());
  CHECK_THAT(Write(writer.get(), 2, 2),
             StatusIs(StatusCode::kIOError, "rank store 0 at '/s': the store crashed (fault backend, at commit #2"));
  CHECK(fault.crashed());
  // Every later call of every store, and of the backend, fails.
  CHECK_THAT(Read(*writer, Key(1, 0)), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(Read(*reader, Key(1, 0)), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(reader->CatchUp(), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(fault.Open("/s", 0, Mode::kRead, {}).status(), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(fault.CheckMetadata("/s", 0), StatusIs(StatusCode::kIOError, "the store crashed"));

  // Recovery, in the same process, while the dead instances still exist.
  auto fresh = ValueOrDie(memory.Open("/s", 0, Mode::kWrite, {}));
  CHECK_OK(Read(*fresh, Key(1, 1)));
  CHECK_THAT(Read(*fresh, Key(2, 0)), StatusIs(StatusCode::kNotFound));
  CHECK(ValueOrDie(fresh->NewestGeneration()) == 1);
}

TEST_CASE("fault: a crash after a commit keeps the batch, though the caller saw a failure",
          "[store][fault][crash]") {
  MemoryBackend memory;
  FaultBackend fault(&memory, [&] { memory.Crash(); });
  auto writer = ValueOrDie(fault.Open("/s", 1, Mode::kWrite, {}));
  fault.CrashAt(Op::kCommit, 1, 1, When::kAfter);
  CHECK_THAT(Write(writer.get(), 5, 3),
             StatusIs(StatusCode::kIOError, "the store crashed (fault backend, after commit #1 of rank store 1"));
  // A second fault backend over the same memory: the recovered store.
  FaultBackend again(&memory);
  auto fresh = ValueOrDie(again.Open("/s", 1, Mode::kWrite, {}));
  for (int i = 0; i < 3; ++i) CHECK_OK(Read(*fresh, Key(5, i)));
}

TEST_CASE("fault: a crash on another operation stops bulk writers in flight", "[store][fault][crash]") {
  MemoryBackend memory;
  FaultBackend fault(&memory, [&] { memory.Crash(); });
  auto writer = ValueOrDie(fault.Open("/s", 0, Mode::kWrite, {}));
  auto w = ValueOrDie(writer->NewBulkWriter("in flight"));
  REQUIRE_OK(w->Add(Key(1, 0), "x"));
  fault.CrashAt(Op::kGet, 1);
  CHECK_THAT(Read(*writer, Key(1, 0)), StatusIs(StatusCode::kIOError, "at get #1"));
  CHECK_THAT(w->Add(Key(1, 1), "y"), StatusIs(StatusCode::kIOError, "the store crashed"));
  CHECK_THAT(w->Commit(), StatusIs(StatusCode::kIOError, "the store crashed"));
  auto fresh = ValueOrDie(memory.Open("/s", 0, Mode::kRead, {}));
  CHECK_THAT(Read(*fresh, Key(1, 0)), StatusIs(StatusCode::kNotFound));
}

TEST_CASE("fault: over RocksDB, a failed commit leaves nothing visible", "[store][fault]") {
  dcp::testing::TempDir tmp;
  FaultBackend fault(DefaultBackend());
  CHECK(fault.Name() == "fault(rocksdb)");
  auto store = ValueOrDie(fault.Open(tmp.Sub("rank-00000"), 0, Mode::kWrite, {}));
  fault.FailAt(Op::kCommit, 1, 0);
  CHECK_THAT(Write(store.get(), 1, 3), StatusIs(StatusCode::kIOError, "injected I/O error in commit #1"));
  CHECK_THAT(Read(*store, Key(1, 0)), StatusIs(StatusCode::kNotFound));
  fault.ShortWriteAt(1);
  CHECK_THAT(Write(store.get(), 2, 3), StatusIs(StatusCode::kIOError, "only 1 of 3 records"));
  CHECK_OK(Read(*store, Key(2, 0)));
  CHECK_THAT(Read(*store, Key(2, 1)), StatusIs(StatusCode::kNotFound));
  fault.Crash();
  CHECK_THAT(Read(*store, Key(2, 0)), StatusIs(StatusCode::kIOError, "the store crashed (fault backend, on request)"));
}

}  // namespace
}  // namespace dcp::storage
