// Copyright (c) dcp authors.

#include "engine/inspect/inspect.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/inspect/render.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

const InspectFixture& Fixture() {
  // Destroyed at exit, and its directory with it (a leaked `new` left one
  // /tmp/dcp-test-* behind per test process).
  static const InspectFixture f;
  return f;
}

TEST_CASE("KeyMatches is a shell glob over whole keys", "[inspect]") {
  CHECK(KeyMatches("", "anything"));
  CHECK(KeyMatches("layer.*", "layer.w"));
  CHECK(KeyMatches("*.w", "decoder.layers.0.w"));
  CHECK(KeyMatches("l?yer.w", "layer.w"));
  CHECK(KeyMatches("[ab]*", "bias"));
  CHECK_FALSE(KeyMatches("layer.*", "emb"));
  CHECK_FALSE(KeyMatches("layer", "layer.w"));
}

TEST_CASE("ListSteps: counts, sizes, unique bytes of incremental steps", "[inspect]") {
  auto reader = Fixture().Reader();
  const auto steps = ValueOrDie(ListSteps(reader.get()));
  REQUIRE(steps.size() == 3);
  const StepInfo& s5 = steps[0].info;
  CHECK(s5.step == 5);
  CHECK(s5.world_size == 2);
  CHECK(s5.num_tensors == 8);
  CHECK(s5.num_objects == 2);
  // layer.w 4 chunks, emb 2, counts 2, and one chunk each for the other five.
  CHECK(s5.num_chunks == 13);
  uint64_t raw = 0;
  for (const std::string& k : Fixture().Keys(5)) raw += Fixture().Values(5, k).size();
  raw += std::string("rng-of-rank-0").size() + std::string("rng-of-rank-1").size();
  CHECK(s5.raw_bytes == raw);
  CHECK(s5.unique_bytes == s5.stored_bytes);  // the first step wrote everything
  CHECK(steps[0].problem.empty());
  // Step 7 changed one chunk of layer.w and a few tensors; the rest it refers to.
  const StepInfo& s7 = steps[1].info;
  CHECK(s7.step == 7);
  CHECK(s7.unique_bytes < s7.stored_bytes);
  CHECK(s7.unique_bytes > 16 << 10);  // at least the changed 16 KiB chunk
  CHECK(steps[2].info.step == 9);

  const std::string table = RenderStepsTable(steps);
  CHECK(table.find("unique") != std::string::npos);
  CHECK(table.find("         5  ") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderStepsJson(steps));
  REQUIRE(j.size() == 3);
  CHECK(j[0]["step"] == 5);
  CHECK(j[0]["world_size"] == 2);
  CHECK(j[0]["raw_bytes"] == raw);
  CHECK(j[1]["unique_bytes"] == s7.unique_bytes);
  CHECK(j[1]["problem"].is_null());
}

TEST_CASE("ShowStep: tensors, objects, common state, key filter", "[inspect]") {
  auto reader = Fixture().Reader();
  const StepDetail d = ValueOrDie(ShowStep(reader.get(), 5));
  REQUIRE(d.tensors.size() == 8);
  CHECK(d.tensors[0].info.key == "bias");  // sorted
  const TensorSummary* w = nullptr;
  for (const auto& t : d.tensors) {
    if (t.info.key == "layer.w") w = &t;
  }
  REQUIRE(w != nullptr);
  CHECK(w->info.dtype == DType::kFloat32);
  CHECK(w->info.global_shape == Shape{256, 64});
  CHECK(w->info.num_chunks == 4);
  CHECK(w->num_ranks == 2);
  CHECK(w->info.raw_bytes == 256 * 64 * 4);
  CHECK(w->unique_bytes == w->info.stored_bytes);
  REQUIRE(d.objects.size() == 2);
  CHECK(d.objects[0].info.unique_key == "rng/shard_0_2");
  CHECK(d.objects[1].store_rank == 1);
  CHECK(d.common.problem.empty());
  std::map<std::string, std::string> common(d.common.entries.begin(), d.common.entries.end());
  CHECK(common["iteration"] == "5");
  CHECK(common["args"] == "{2 keys}");
  CHECK(common["blob"] == "<4 bytes>");
  CHECK(common["t"] == "tensor int32 (2, 2)");

  const std::string table = RenderStepTable(d);
  CHECK(table.find("layer.w") != std::string::npos);
  CHECK(table.find("(256, 64)") != std::string::npos);
  CHECK(table.find("float8_e4m3") != std::string::npos);
  CHECK(table.find("rng/shard_1_2") != std::string::npos);
  CHECK(table.find("iteration: 5") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderStepJson(d));
  CHECK(j["step"] == 5);
  CHECK(j["tensor_list"].size() == 8);
  CHECK(j["tensor_list"][0]["key"] == "bias");
  CHECK(j["tensor_list"][0]["dtype"] == "float16");
  CHECK(j["tensor_list"][0]["global_shape"] == nlohmann::json::array({16}));
  CHECK(j["tensor_list"][0]["compression_ratio"].is_number());
  CHECK(j["object_list"][1]["unique_key"] == "rng/shard_1_2");
  CHECK(j["common_state"]["entries"]["iteration"] == "5");

  // Step 7 refers to step 5's unchanged emb chunks: none of its stored bytes are its own.
  const StepDetail d7 = ValueOrDie(ShowStep(reader.get(), 7, "e*"));
  REQUIRE(d7.tensors.size() == 1);
  CHECK(d7.tensors[0].info.key == "emb");
  CHECK(d7.tensors[0].unique_bytes == 0);
  CHECK(d7.objects.empty());
  CHECK(RenderStepTable(d7).find("keys matching 'e*': 1 tensors, 0 objects") != std::string::npos);
  const StepDetail rng = ValueOrDie(ShowStep(reader.get(), 7, "rng"));
  CHECK(rng.tensors.empty());
  CHECK(rng.objects.size() == 2);
}

TEST_CASE("GetLayout draws which rank holds which rows and columns", "[inspect]") {
  auto reader = Fixture().Reader();
  const TensorLayout rows = ValueOrDie(GetLayout(reader.get(), 5, "layer.w"));
  CHECK_OK(rows.coverage);
  REQUIRE(rows.ranks.size() == 2);
  CHECK(rows.ranks[0].rank == 0);
  CHECK(rows.ranks[0].chunks == 2);
  CHECK(rows.ranks[0].elements == 128 * 64);
  REQUIRE(rows.map.cells.size() == LayoutMap::kMaxMapRows);
  CHECK(rows.map.row_cuts.back() == 256);
  CHECK(rows.map.col_cuts.back() == 64);
  for (size_t i = 0; i < rows.map.cells.size(); ++i) {
    INFO("row " << i);
    CHECK(rows.map.cells[i] == std::string(64, rows.map.row_cuts[i] < 128 ? '0' : '1'));
  }
  const TensorLayout cols = ValueOrDie(GetLayout(reader.get(), 5, "emb"));
  REQUIRE(cols.map.cells.size() == 24);
  CHECK(cols.map.cells[0] == std::string(8, '0') + std::string(8, '1'));
  const std::string table = RenderLayoutTable(cols);
  CHECK(table.find("coverage: exact") != std::string::npos);
  CHECK(table.find("|0000000011111111|") != std::string::npos);

  const TensorLayout flat = ValueOrDie(GetLayout(reader.get(), 5, "stats"));
  REQUIRE(flat.map.cells.size() == 1);
  CHECK(flat.map.cells[0] == std::string(12, '1'));

  // 3-D: a table of chunks instead of a map.
  const TensorLayout cube = ValueOrDie(GetLayout(reader.get(), 5, "counts"));
  CHECK(cube.map.empty());
  const std::string cube_table = RenderLayoutTable(cube);
  CHECK(cube_table.find("(0, 2, 0)") != std::string::npos);
  CHECK(cube_table.find("(3, 2, 5)") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderLayoutJson(cube));
  CHECK(j["coverage"]["exact"] == true);
  REQUIRE(j["chunks"].size() == 2);
  CHECK(j["chunks"][1]["offset"] == nlohmann::json::array({0, 2, 0}));
  CHECK(j["chunks"][1]["rank"] == 1);
  CHECK(j["chunks"][1]["checksum"].get<std::string>().size() == 32);
  CHECK_FALSE(j.contains("map"));

  REQUIRE_THAT(GetLayout(reader.get(), 5, "nope").status(),
               StatusIs(StatusCode::kNotFound, "tensor 'nope' is not in step 5"));
  REQUIRE_THAT(GetLayout(reader.get(), 5, "rng/shard_0_2").status(), StatusIs(StatusCode::kNotFound, "is an object"));
}

TEST_CASE("A manifest with overlapping chunks is described, with the problem", "[inspect]") {
  InspectFixture f;
  {
    // Move layer.w's second chunk up by 8 rows: rows 56..64 are covered twice,
    // rows 120..128 not at all.
    auto m = ValueOrDie(manifest::DecodeManifest(ValueOrDie(storage::ReadManifestFile(f.root(), 5)), "m"));
    for (auto& t : m.tensors) {
      if (t.key != "layer.w") continue;
      for (auto& c : t.chunks) {
        if (c.box.origin[0] == 64) c.box.origin[0] -= 8;
      }
    }
    REQUIRE_OK(storage::PublishManifest(f.root(), 5, m.generation, manifest::EncodeManifest(m)));
  }
  auto reader = f.Reader();
  const auto steps = ValueOrDie(ListSteps(reader.get()));
  CHECK(steps[0].problem.find("tensor 'layer.w' has overlapping chunks") != std::string::npos);
  const StepDetail d = ValueOrDie(ShowStep(reader.get(), 5, "layer.w"));
  REQUIRE(d.tensors.size() == 1);
  CHECK(d.tensors[0].problem.find("overlapping chunks at [56:64, 0:64]") != std::string::npos);
  CHECK(RenderStepTable(d).find("problem: ") != std::string::npos);

  const TensorLayout l = ValueOrDie(GetLayout(reader.get(), 5, "layer.w"));
  REQUIRE_THAT(l.coverage, StatusIs(StatusCode::kDataLoss, "overlapping chunks"));
  std::string all;
  for (const auto& row : l.map.cells) all += row;
  CHECK(all.find(kOverlapCell) != std::string::npos);
  CHECK(all.find(kHoleCell) != std::string::npos);
  CHECK(RenderLayoutTable(l).find("coverage: manifest tensor 'layer.w' has overlapping") != std::string::npos);
  // Data reads refuse the broken tensor but not the others.
  REQUIRE_THAT(reader->Tensor(*ValueOrDie(reader->Load(5)), "layer.w").status(),
               StatusIs(StatusCode::kDataLoss, "overlapping chunks"));
  CHECK(reader->Tensor(*ValueOrDie(reader->Load(5)), "emb").ok());
}

TEST_CASE("GetCommonState returns the saved common state", "[inspect]") {
  auto reader = Fixture().Reader();
  const Value v = ValueOrDie(GetCommonState(reader.get(), 7));
  REQUIRE(v.Find("iteration") != nullptr);
  CHECK(v.Find("iteration")->as_int() == 7);
  const auto j = nlohmann::json::parse(RenderCommonJson(v));
  CHECK(j["iteration"] == 7);
  CHECK(j["args"]["lr"] == 0.001);
  CHECK(j["args"]["name"] == "gpt");
  CHECK(j["blob"]["__dcp_bytes__"] == "AAH+/w==");
  CHECK(j["t"]["__dcp_tensor__"] == "int32");
  CHECK(j["t"]["shape"] == nlohmann::json::array({2, 2}));
  CHECK(j["t"]["values"] == nlohmann::json::array({1, 2, 3, -1}));
}

TEST_CASE("inspect errors name the path, step and key", "[inspect]") {
  testing::TempDir dir;
  REQUIRE_THAT(StoreReader::Open(dir.Sub("nope")).status(), StatusIs(StatusCode::kNotFound, "does not exist"));
  std::ofstream(dir.Sub("file")) << "x";
  REQUIRE_THAT(StoreReader::Open(dir.path()).status(), StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
  InspectFixture f;
  auto reader = f.Reader();
  REQUIRE_THAT(ShowStep(reader.get(), 6).status(), StatusIs(StatusCode::kNotFound, "step 6 is not committed"));
  REQUIRE_THAT(GetCommonState(reader.get(), 6).status(), StatusIs(StatusCode::kNotFound, "step 6"));
  std::ofstream(storage::ManifestPath(f.root(), 5), std::ios::trunc) << "garbage";
  REQUIRE_THAT(ShowStep(reader.get(), 5).status(), StatusIs(StatusCode::kDataLoss, "00000000000000000005.manifest"));
  // ls still lists every step, naming the unreadable one.
  const auto steps = ValueOrDie(ListSteps(reader.get()));
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].problem.find("00000000000000000005.manifest") != std::string::npos);
  CHECK(steps[1].problem.empty());
  CHECK(RenderStepsTable(steps).find("unreadable: ") != std::string::npos);
}

}  // namespace
}  // namespace dcp::inspect
