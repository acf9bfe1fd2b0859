// Copyright (c) dcp authors.
// Tests of engine/inspect/repair.cc: dcp-inspect repair.

#include "engine/inspect/repair.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/inspect/verify.h"
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

TEST_CASE("Repair does not run beside a writer", "[inspect]") {
  InspectFixture f;
  auto lock = ValueOrDie(storage::WriterLock::Acquire(f.root()));
  CHECK_THAT(RepairStore(f.root()).status(), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace dcp::inspect
