// Copyright (c) dcp authors.
// Tests of engine/sharding/flatten.cc: state dicts flattened into leaves and common state.

#include "engine/sharding/flatten.h"

#include <catch2/catch.hpp>

#include <vector>

#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "dcp/tensor_view.h"
#include "dcp/value.h"
#include "tests/testing/status_matchers.h"

namespace dcp::sharding {
namespace {

using dcp::testing::StatusIs;

float g_data[64];

ShardedTensor Tensor(const std::string& key) {
  return ShardedTensor::Whole(key, TensorView(g_data, DType::kFloat32, {4, 4}));
}

ShardedObject Object(const std::string& key) {
  ShardedObject o;
  o.key = key;
  o.data = "bytes";
  return o;
}

StateDict Sample() {
  StateDict sd;
  StateDict model;
  model.Add("w", Tensor("model.w")).Add("b", Tensor("model.b")).Add("cfg", Value("gpt"));
  StateDict decoder;
  decoder.Add("layers", Tensor("decoder.layers"));
  model.Add("decoder", std::move(decoder));
  sd.Add("model", std::move(model));
  StateDict optimizer;
  optimizer.Add("state", Object("optimizer.state")).Add("lr", Value(0.5));
  sd.Add("optimizer", std::move(optimizer));
  sd.Add("iteration", Value(1000));
  sd.Add("empty", StateDict());                 // omitted from the common state
  sd.Child("nested_empty").Child("inner");      // a dict of an empty dict: omitted too
  sd.Add("tensors_only", StateDict().Add("t", Tensor("t")));  // no Value leaves: omitted
  return sd;
}

TEST_CASE("FlattenForSave collects leaves with dotted paths", "[sharding][flatten]") {
  const StateDict sd = Sample();
  FlatState flat;
  REQUIRE_OK(FlattenForSave(sd, &flat));

  REQUIRE(flat.tensors.size() == 4);
  CHECK(flat.tensors[0].path == "model.w");
  CHECK(flat.tensors[1].path == "model.b");
  CHECK(flat.tensors[2].path == "model.decoder.layers");
  CHECK(flat.tensors[3].path == "tensors_only.t");
  // Leaves point into the caller's dict.
  CHECK(flat.tensors[0].item == &sd.dict(0).tensor(0));
  CHECK(flat.tensors[2].item->key == "decoder.layers");

  REQUIRE(flat.objects.size() == 1);
  CHECK(flat.objects[0].path == "optimizer.state");
  CHECK(flat.objects[0].item == &sd.dict(1).object(0));

  // The common state mirrors the nesting of the Value leaves.
  Value model = Value::Map();
  model.Set("cfg", Value("gpt"));
  Value optimizer = Value::Map();
  optimizer.Set("lr", Value(0.5));
  Value want = Value::Map();
  want.Set("model", model);
  want.Set("optimizer", optimizer);
  want.Set("iteration", Value(1000));
  INFO(flat.common.DebugString());
  CHECK(flat.common == want);
  CHECK(flat.common.Find("empty") == nullptr);
  CHECK(flat.common.Find("nested_empty") == nullptr);
  CHECK(flat.common.Find("tensors_only") == nullptr);
}

TEST_CASE("FlattenForSave of an empty dict", "[sharding][flatten]") {
  FlatState flat;
  REQUIRE_OK(FlattenForSave(StateDict(), &flat));
  CHECK(flat.tensors.empty());
  CHECK(flat.objects.empty());
  CHECK(flat.common == Value::Map());
}

TEST_CASE("Duplicate keys are refused by path", "[sharding][flatten]") {
  SECTION("top level") {
    StateDict sd;
    sd.Add("w", Tensor("a")).Add("w", Tensor("b"));
    FlatState flat;
    CHECK_THAT(FlattenForSave(sd, &flat), StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'w'"));
    FlatRequest req;
    CHECK_THAT(FlattenForLoad(&sd, &req), StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'w'"));
  }
  SECTION("nested, and across kinds") {
    StateDict sd;
    sd.Child("model").Child("decoder").Add("w", Tensor("a")).Add("w", Value(3));
    FlatState flat;
    CHECK_THAT(FlattenForSave(sd, &flat),
               StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'model.decoder.w'"));
    FlatRequest req;
    CHECK_THAT(FlattenForLoad(&sd, &req),
               StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'model.decoder.w'"));
  }
  SECTION("the same key in different dicts is fine") {
    StateDict sd;
    sd.Child("a").Add("w", Tensor("a.w"));
    sd.Child("b").Add("w", Tensor("b.w"));
    FlatState flat;
    REQUIRE_OK(FlattenForSave(sd, &flat));
    REQUIRE(flat.tensors.size() == 2);
    CHECK(flat.tensors[0].path == "a.w");
    CHECK(flat.tensors[1].path == "b.w");
  }
}

TEST_CASE("FlattenForLoad collects writable leaves and skips values", "[sharding][flatten]") {
  StateDict sd = Sample();
  FlatRequest req;
  REQUIRE_OK(FlattenForLoad(&sd, &req));
  REQUIRE(req.tensors.size() == 4);
  CHECK(req.tensors[2].path == "model.decoder.layers");
  CHECK(req.tensors[0].item == &sd.dict(0).tensor(0));
  REQUIRE(req.objects.size() == 1);
  CHECK(req.objects[0].path == "optimizer.state");
  req.objects[0].item->data = "loaded";  // the request fills the caller's dict
  CHECK(sd.dict(1).object(0).data == "loaded");
}

}  // namespace
}  // namespace dcp::sharding
