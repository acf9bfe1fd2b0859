// Copyright (c) dcp authors.

#include "engine/query/store_set.h"

#include <catch2/catch.hpp>

#include "engine/store/key_layout.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::query {
namespace {

void Write(storage::RankStore* store, const std::string& key, const std::string& value, const std::string& name) {
  auto w = ValueOrDie(store->NewBulkWriter(name));
  REQUIRE_OK(w->Add(key, value));
  REQUIRE_OK(w->Commit());
}

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

TEST_CASE("a miss catches up once per generation, then misses of that generation are final", "[query]") {
  // verify of a store that lost 40k records took a minute when every miss
  // caught up with the writer.
  testing::TempDir dir;
  auto writer = ValueOrDie(
      storage::RankStore::Open(storage::RankStorePath(dir.path(), 1), 1, storage::RankStore::Mode::kWrite));
  Write(writer.get(), "0000000000000001/c/a@0", "one", "g1");
  StoreSet stores(dir.path(), nullptr);
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(1, 1, "0000000000000001/c/a@0", &v));
  // The first miss of generation 1 caught up; a record written after it is not
  // looked for again by reads of generation 1...
  REQUIRE_THAT(stores.Get(1, 1, "0000000000000001/c/lost@0", &v), testing::StatusIs(StatusCode::kNotFound));
  Write(writer.get(), "0000000000000002/c/a@0", "two", "g2");
  REQUIRE_THAT(stores.Get(1, 1, "0000000000000002/c/a@0", &v), testing::StatusIs(StatusCode::kNotFound));
  // ...but a read of its own generation catches up and finds it.
  REQUIRE_OK(stores.Get(1, 2, "0000000000000002/c/a@0", &v));
  CHECK(v.view() == "two");
}

TEST_CASE("the process's own writer instance serves its rank", "[query]") {
  testing::TempDir dir;
  auto writer = ValueOrDie(
      storage::RankStore::Open(storage::RankStorePath(dir.path(), 0), 0, storage::RankStore::Mode::kWrite));
  StoreSet stores(dir.path(), writer.get());
  Write(writer.get(), "k", "v", "g");
  storage::PinnedValue v;
  REQUIRE_OK(stores.Get(0, 0, "k", &v));
  CHECK(v.view() == "v");
}

}  // namespace
}  // namespace dcp::query
