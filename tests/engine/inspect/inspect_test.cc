// Copyright (c) dcp authors.

#include "engine/inspect/inspect.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dcp/store.h"
#include "engine/store/key_layout.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::inspect {
namespace {

using dcp::testing::StatusIs;

void SaveTwoSteps(const std::string& root) {
  auto store = ValueOrDie(Store::Open(root, nullptr));
  std::vector<float> w(64 * 8, 1.0f);
  std::vector<int8_t> z(10, 0);
  StateDict sd;
  sd.Add("w", ShardedTensor::Whole("layer.w", TensorView(w.data(), DType::kFloat32, {64, 8})));
  REQUIRE_OK(store->Put(5, sd));
  sd.Add("z", ShardedTensor::Whole("zeros", TensorView(z.data(), DType::kInt8, {10})));
  ShardedObject o;
  o.key = "rng";
  o.data = "abc";
  o.global_shape = {1};
  o.global_offset = {0};
  sd.Add("rng", o);
  REQUIRE_OK(store->Put(7, sd));
}

TEST_CASE("ListSteps and ShowStep describe what the store holds", "[inspect]") {
  testing::TempDir dir;
  SaveTwoSteps(dir.path());
  const auto steps = ValueOrDie(ListSteps(dir.path()));
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].step == 5);
  CHECK(steps[0].num_tensors == 1);
  CHECK(steps[0].raw_bytes == 64 * 8 * 4);
  CHECK(steps[1].step == 7);
  CHECK(steps[1].num_tensors == 2);
  CHECK(steps[1].num_objects == 1);
  CHECK(steps[1].world_size == 1);

  const StepMetadata md = ValueOrDie(ShowStep(dir.path(), 7));
  REQUIRE(md.tensors.size() == 2);
  CHECK(md.tensors[0].key == "layer.w");
  CHECK(md.tensors[0].dtype == DType::kFloat32);
  CHECK(md.tensors[0].global_shape == Shape{64, 8});
  CHECK(md.tensors[0].num_chunks == 1);
  CHECK(md.tensors[0].raw_bytes == 2048);
  // All-ones floats compress well with LZ4.
  CHECK(md.tensors[0].stored_bytes < md.tensors[0].raw_bytes);
  REQUIRE(md.objects.size() == 1);
  CHECK(md.objects[0].unique_key == "rng/shard_0_1");

  const std::string table = RenderStepTable(md);
  CHECK(table.find("layer.w") != std::string::npos);
  CHECK(table.find("float32") != std::string::npos);
  CHECK(table.find("(64, 8)") != std::string::npos);
  CHECK(table.find("rng/shard_0_1") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderStepJson(md));
  CHECK(j["step"] == 7);
  CHECK(j["tensor_list"][1]["key"] == "zeros");
  CHECK(j["tensor_list"][1]["global_shape"] == nlohmann::json::array({10}));
  const auto js = nlohmann::json::parse(RenderStepsJson(steps));
  CHECK(js.size() == 2);
  CHECK(js[0]["raw_bytes"] == 2048);
  CHECK(RenderStepsTable(steps).find("       5  ") != std::string::npos);
}

TEST_CASE("inspect errors name the path and step", "[inspect]") {
  testing::TempDir dir;
  REQUIRE_THAT(ListSteps(dir.Sub("nope")).status(), StatusIs(StatusCode::kNotFound, "does not exist"));
  std::ofstream(dir.Sub("file")) << "x";
  REQUIRE_THAT(ListSteps(dir.path()).status(), StatusIs(StatusCode::kFailedPrecondition, "is not a dcp store"));
  testing::TempDir store_dir;
  SaveTwoSteps(store_dir.path());
  REQUIRE_THAT(ShowStep(store_dir.path(), 6).status(), StatusIs(StatusCode::kNotFound, "step 6 is not committed"));
  std::ofstream(storage::ManifestPath(store_dir.path(), 5), std::ios::trunc) << "garbage";
  REQUIRE_THAT(ShowStep(store_dir.path(), 5).status(), StatusIs(StatusCode::kDataLoss, "00000000000000000005.manifest"));
}

TEST_CASE("HumanBytes", "[inspect]") {
  CHECK(HumanBytes(0) == "0 B");
  CHECK(HumanBytes(1023) == "1023 B");
  CHECK(HumanBytes(1536) == "1.50 KiB");
  CHECK(HumanBytes(uint64_t{3} << 30) == "3.00 GiB");
}

}  // namespace
}  // namespace dcp::inspect
