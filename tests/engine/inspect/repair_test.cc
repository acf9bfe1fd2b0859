// Copyright (c) dcp authors.
// Tests of engine/inspect/repair.cc: dcp-inspect repair.

#include "engine/inspect/repair.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "dcp/store.h"
#include "engine/inspect/inspect.h"
#include "engine/inspect/render.h"
#include "engine/inspect/verify.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/store/store_lock.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

namespace fs = std::filesystem;
using testing::StatusIs;

TEST_CASE("Repair rebuilds a rank store whose CURRENT was lost; every step verifies again", "[inspect]") {
  InspectFixture f;
  const std::string rank1 = storage::RankStorePath(f.root(), 1);
  fs::remove(rank1 + "/CURRENT");
  REQUIRE_FALSE(storage::RankStore::CheckMetadata(rank1, 1).ok());

  const RepairSummary s = ValueOrDie(RepairStore(f.root()));
  REQUIRE(s.ok());
  REQUIRE(s.ranks.size() >= 2);
  const RankRepair& r1 = s.ranks[1];
  CHECK(r1.rank == 1);
  CHECK_FALSE(r1.report.problem.empty());
  CHECK(r1.report.action.find("CURRENT now names MANIFEST-") != std::string::npos);
  CHECK(s.ranks[0].report.problem.empty());  // the intact one was left alone
  const std::string text = RenderRepairText(s);
  CHECK(text.find("1 repaired, 0 failed") != std::string::npos);
  REQUIRE_OK(storage::RankStore::CheckMetadata(rank1, 1));
  auto reader = f.Reader();
  CHECK(ValueOrDie(Verify(reader.get(), {})).ok());
}

TEST_CASE("Repair marks the step that lost a record damaged; loads refuse it, its neighbours load", "[inspect]") {
  InspectFixture f;
  uint64_t gen9 = 0;
  {
    auto reader = f.Reader();
    gen9 = ValueOrDie(reader->Load(9))->manifest().generation;
  }
  // A chunk only step 9 uses (steps 5 and 7 cut layer.w differently).
  const std::string key = storage::ChunkRecordKey(gen9, "layer.w", {128, 0});
  REQUIRE_FALSE(CorruptStoredRecord(f.root(), 1, key, 1000).empty());

  const RepairSummary s = ValueOrDie(RepairStore(f.root()));
  INFO(RenderRepairText(s));
  REQUIRE(s.ok());
  REQUIRE(s.steps_checked);
  REQUIRE(s.steps.size() == 3);
  CHECK_FALSE(s.steps[0].damaged);  // step 5
  CHECK_FALSE(s.steps[1].damaged);  // step 7
  REQUIRE(s.steps[2].damaged);
  CHECK(s.steps[2].step == 9);
  CHECK(s.steps[2].problems == 1);
  CHECK(s.steps[2].reason.find("'layer.w' at (128, 0)") != std::string::npos);
  CHECK(RenderRepairText(s).find("3 steps verified: 2 intact, 1 damaged") != std::string::npos);
  CHECK(RenderRepairJson(s).find("\"state\": \"damaged\"") != std::string::npos);

  const auto damage = ValueOrDie(storage::StepDamage(f.root(), 9));
  REQUIRE(damage.has_value());
  CHECK(*damage == s.steps[2].reason);
  CHECK_FALSE(ValueOrDie(storage::StepDamage(f.root(), 7)).has_value());

  // Loads: the damaged step is refused naming itself and the newest intact
  // step; the others load.
  auto store = ValueOrDie(Store::Open(f.root(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK_THAT(store->Metadata(9).status(),
             StatusIs(StatusCode::kDataLoss, "step 9 of store '" + f.root() + "' is marked damaged (dcp-inspect repair"));
  CHECK_THAT(store->Metadata(9).status(), StatusIs(StatusCode::kDataLoss, "the newest intact step is 7"));
  REQUIRE_OK(store->Metadata(7).status());
  REQUIRE_OK(store->Metadata(5).status());

  // ls shows it.
  {
    auto reader = f.Reader();
    const auto steps = ValueOrDie(ListSteps(reader.get()));
    REQUIRE(steps.size() == 3);
    CHECK(steps[2].damage == *damage);
    CHECK(steps[1].damage.empty());
    CHECK(RenderStepsTable(steps).find("DAMAGED (loads refuse it)") != std::string::npos);
  }

  SECTION("restoring the byte and repairing again clears the mark") {
    REQUIRE_FALSE(CorruptStoredRecord(f.root(), 1, key, 1000).empty());  // flips it back
    const RepairSummary again = ValueOrDie(RepairStore(f.root()));
    REQUIRE(again.steps.size() == 3);
    CHECK_FALSE(again.steps[2].damaged);
    CHECK(again.steps[2].was_damaged);
    CHECK_FALSE(ValueOrDie(storage::StepDamage(f.root(), 9)).has_value());
    REQUIRE_OK(store->Metadata(9).status());
  }
  SECTION("deleting the step removes the mark") {
    REQUIRE_OK(storage::DeleteManifest(f.root(), 9));
    CHECK_FALSE(ValueOrDie(storage::StepDamage(f.root(), 9)).has_value());
  }
}

TEST_CASE("Repair does not run beside a writer", "[inspect]") {
  InspectFixture f;
  auto lock = ValueOrDie(storage::WriterLock::Acquire(f.root()));
  CHECK_THAT(RepairStore(f.root()).status(), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace dcp::inspect
