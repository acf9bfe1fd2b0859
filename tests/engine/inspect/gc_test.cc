// Copyright (c) dcp authors.
// Tests of engine/inspect/gc.cc: dcp-inspect gc predicts what CollectGarbage
// frees and leaves pending, and changes nothing.

#include "engine/inspect/gc.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "dcp/store.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

GarbageSurvey Survey(const InspectFixture& f, double fraction) {
  auto s = SurveyGarbage(f.Reader().get(), fraction);
  REQUIRE_OK(s.status());
  return *s;
}

TEST_CASE("gc's survey matches what the collection then frees and leaves pending", "[inspect]") {
  InspectFixture f;  // steps 5, 7 (incremental on 5) and 9, two rank stores
  GarbageSurvey before = Survey(f, 0.5);
  CHECK(before.steps == 3);
  REQUIRE(before.ranks.size() == 2);
  CHECK(before.total.unreferenced_generations == 0);
  CHECK(before.total.dead_records == 0);
  CHECK(before.total.table_bytes > 0);

  auto store = Store::Open(f.root(), nullptr);
  REQUIRE_OK(store.status());
  // Step 5's puts stay shared with step 7 (its unchanged chunks), the rest
  // of them is dead; step 9's puts are no longer referenced at all.
  REQUIRE_OK((*store)->DeleteStep(5));
  REQUIRE_OK((*store)->DeleteStep(9));
  const GarbageSurvey lazy = Survey(f, 0.5);
  const GarbageSurvey eager = Survey(f, 0.0);
  CHECK(lazy.steps == 1);
  CHECK(lazy.total.unreferenced_generations == 2);  // step 9's put in each rank store
  CHECK(lazy.total.partial_generations == 2);       // step 5's
  CHECK(lazy.total.dead_records > 0);
  CHECK(lazy.total.compacted_bytes + lazy.total.pending_bytes > 0);
  CHECK(eager.total.pending_bytes == 0);
  CHECK(eager.total.compacted_bytes == lazy.total.compacted_bytes + lazy.total.pending_bytes);
  // Surveying changed nothing.
  CHECK(Survey(f, 0.5).total.table_bytes == lazy.total.table_bytes);

  GcReport report;
  REQUIRE_OK((*store)->CollectGarbage(&report));
  CHECK(report.generations_removed == lazy.total.unreferenced_generations);
  CHECK(report.bytes_pending == lazy.total.pending_bytes);
  CHECK(report.bytes_before == lazy.total.table_bytes);
  CHECK((report.records_removed > 0) == (lazy.total.compacted_bytes > 0));

  const GarbageSurvey after = Survey(f, 0.5);
  CHECK(after.total.unreferenced_generations == 0);
  CHECK(after.total.table_bytes == report.bytes_after);
  CHECK(after.total.pending_bytes == report.bytes_pending);

  // A collection that compacts every time frees what was pending.
  GcOptions eager_options;
  eager_options.compact_dead_fraction = 0;
  REQUIRE_OK((*store)->CollectGarbage(&report, eager_options));
  CHECK(report.bytes_pending == 0);
  const GarbageSurvey done = Survey(f, 0.0);
  CHECK(done.total.dead_records == 0);
  CHECK(done.total.compacted_bytes == 0);

  const auto j = nlohmann::json::parse(RenderGarbageJson(lazy));
  CHECK(j["total"]["unreferenced_puts"] == 2);
  CHECK(j["ranks"].size() == 2);
  CHECK(RenderGarbageTable(lazy).find("pending") != std::string::npos);
}

}  // namespace
}  // namespace dcp::inspect
