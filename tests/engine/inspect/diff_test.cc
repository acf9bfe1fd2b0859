// Copyright (c) dcp authors.

#include "engine/inspect/diff.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/inspect/render.h"
#include "engine/store/key_layout.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

const TensorDiff& Find(const DiffReport& d, const std::string& key) {
  for (const TensorDiff& t : d.tensors) {
    if (t.key == key) return t;
  }
  FAIL("no diff entry for " << key);
  return d.tensors.front();
}

TEST_CASE("Diff by chunk checksums, and exactly by elements", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  const DiffReport d = ValueOrDie(Diff(reader.get(), 5, 7));
  INFO(RenderDiffTable(d));
  // layer.w: rows 0..3 changed, inside its first 64-row chunk: by checksums
  // the whole 16 KiB chunk counts, no record is read.
  const TensorDiff& w = Find(d, "layer.w");
  CHECK(w.change == Change::kChanged);
  CHECK(w.bytes == 256 * 64 * 4);
  CHECK(w.changed_bytes == 64 * 64 * 4);
  CHECK_FALSE(w.exact);
  CHECK(w.chunks_by_checksum == 4);
  CHECK(w.bytes_decoded == 0);
  CHECK(w.changed_fraction() == Approx(0.25));
  CHECK(Find(d, "emb").change == Change::kSame);
  CHECK(Find(d, "emb").changed_bytes == 0);
  CHECK(Find(d, "bias").change == Change::kRemoved);
  CHECK(Find(d, "bias").changed_bytes == 32);
  CHECK(Find(d, "new").change == Change::kAdded);
  CHECK(Find(d, "new").changed_bytes == 20);
  const TensorDiff& counts = Find(d, "counts");
  CHECK(counts.change == Change::kRetyped);
  CHECK(counts.shape_a == Shape{3, 4, 5});
  CHECK(counts.shape_b == Shape{3, 4, 6});
  CHECK(counts.changed_bytes == 3 * 4 * 6 * 8);
  CHECK(d.tensors.size() == 9);  // the union of both steps' keys
  CHECK_FALSE(d.exact);
  CHECK(d.changed_bytes == 64 * 64 * 4 + 32 + 20 + 3 * 4 * 6 * 8);
  REQUIRE(d.objects.size() == 2);
  CHECK(d.objects[0].change == Change::kChanged);  // rank 0's rng cell
  CHECK(d.objects[1].change == Change::kSame);
  CHECK(d.common_state_changed);
  CHECK(d.common_keys_changed == std::vector<std::string>{"iteration"});

  const std::string table = RenderDiffTable(d);
  CHECK(table.find("changed   layer.w") != std::string::npos);
  CHECK(table.find("whole chunks") != std::string::npos);
  CHECK(table.find("retyped   counts") != std::string::npos);
  CHECK(table.find("int64 (3, 4, 5) -> int64 (3, 4, 6)") != std::string::npos);
  CHECK(table.find("common state changed: iteration") != std::string::npos);
  CHECK(table.find("object rng/shard_0_2: changed") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderDiffJson(d));
  CHECK(j["changed_bytes"] == d.changed_bytes);
  CHECK(j["exact"] == false);
  CHECK(j["tensors"].size() == 9);
  CHECK(j["common_state"]["keys_changed"] == nlohmann::json::array({"iteration"}));

  // Exact: the differing chunk is decoded from both steps; 4 rows changed.
  DiffOptions exact;
  exact.exact = true;
  exact.keys_glob = "layer.*";
  const DiffReport e = ValueOrDie(Diff(reader.get(), 5, 7, exact));
  REQUIRE(e.tensors.size() == 1);
  CHECK(e.tensors[0].changed_bytes == 4 * 64 * 4);
  CHECK(e.tensors[0].exact);
  CHECK(e.tensors[0].bytes_decoded == 2 * 64 * 64 * 4);
  CHECK(e.exact);
  CHECK(e.changed_fraction() == Approx(4.0 / 256));
  CHECK(e.objects.empty());
}

TEST_CASE("Diff decodes regions when the steps chunk a tensor differently", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  // Steps 7 and 9 hold the same values; step 9 uses 32-row chunks for layer.w.
  DiffOptions o;
  o.block_bytes = 4096;  // several blocks per chunk
  const DiffReport d = ValueOrDie(Diff(reader.get(), 7, 9, o));
  INFO(RenderDiffTable(d));
  CHECK(d.changed_bytes == 0);
  CHECK(d.exact);
  const TensorDiff& w = Find(d, "layer.w");
  CHECK(w.change == Change::kSame);
  CHECK(w.chunks_by_checksum == 0);
  CHECK(w.bytes_decoded == 2 * 256 * 64 * 4);
  CHECK(Find(d, "emb").chunks_by_checksum == 2);
  CHECK(RenderDiffTable(d).find("8 tensors unchanged") != std::string::npos);
  CHECK(d.common_keys_changed == std::vector<std::string>{"iteration"});  // 7 -> 9
  CHECK(d.objects.size() == 2);
  CHECK(d.objects[0].change == Change::kSame);

  // 5 -> 9: different chunk boxes and changed rows: exact element counts.
  const DiffReport d59 = ValueOrDie(Diff(reader.get(), 5, 9, o));
  CHECK(Find(d59, "layer.w").changed_bytes == 4 * 64 * 4);
  CHECK(Find(d59, "layer.w").exact);
}

TEST_CASE("Diff errors", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  REQUIRE_THAT(Diff(reader.get(), 5, 6).status(), StatusIs(StatusCode::kNotFound, "step 6 is not committed"));
  // A chunk that must be decoded is damaged: data loss naming it.
  auto step9 = ValueOrDie(reader->Load(9));
  const std::string key = storage::ChunkRecordKey(step9->manifest().generation, "layer.w", {0, 0});
  REQUIRE_FALSE(CorruptStoredRecord(f.root(), 0, key, 100).empty());
  auto fresh = f.Reader();
  REQUIRE_THAT(Diff(fresh.get(), 7, 9).status(),
               StatusIs(StatusCode::kDataLoss, "tensor 'layer.w' chunk at offset (0, 0) in rank store 0"));
}

}  // namespace
}  // namespace dcp::inspect
