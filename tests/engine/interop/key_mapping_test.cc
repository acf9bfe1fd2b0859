// Copyright (c) dcp authors.
// Tests of engine/interop/key_mapping.cc: rules files and what they make of a model.

#include "engine/interop/key_mapping.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace dcp::interop {
namespace {

using testing::StatusIs;

// Hugging Face Llama-style names -> Megatron-Core names.
constexpr const char* kRules = R"j({"rules": [
  {"match": "model\\.embed_tokens\\.weight", "to": "embedding.word_embeddings.weight"},
  {"match": "model\\.layers\\.(\\d+)\\.self_attn\\.qkv_proj\\.weight",
   "split": {"axis": 0, "into": [{"to": "decoder.layers.{1}.q.weight", "size": 8},
                                 {"to": "decoder.layers.{1}.k.weight", "size": 2},
                                 {"to": "decoder.layers.{1}.v.weight", "size": 2}]}},
  {"match": "model\\.layers\\.(\\d+)\\.mlp\\.(gate|up)_proj\\.weight",
   "to": "decoder.layers.{1}.mlp.linear_fc1.weight", "concat": {"axis": 0, "by": 2, "order": ["gate", "up"]}},
  {"match": "model\\.layers\\.(\\d+)\\.attn\\.halves", "split": {"axis": 1, "into": [{"to": "h{1}.a"}, {"to": "h{1}.b"}]}}
]})j";

const Destination* Find(const std::vector<Destination>& ds, const std::string& name) {
  for (const auto& d : ds) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST_CASE("rename, split (sized and equal, any axis) and concat make the destinations", "[interop]") {
  auto mapping = KeyMapping::Parse(kRules, "rules.json");
  REQUIRE_OK(mapping.status());
  const std::vector<SourceTensor> sources = {
      {"model.embed_tokens.weight", DType::kBFloat16, {32, 4}},
      {"model.layers.3.self_attn.qkv_proj.weight", DType::kFloat32, {12, 4}},
      {"model.layers.3.mlp.up_proj.weight", DType::kFloat32, {6, 4}},  // before gate: the order decides
      {"model.layers.3.mlp.gate_proj.weight", DType::kFloat32, {6, 4}},
      {"model.layers.0.attn.halves", DType::kInt64, {2, 6}},
  };
  auto ds = mapping->Apply(sources, false);
  REQUIRE_OK(ds.status());
  REQUIRE(ds->size() == 7);
  const Destination* e = Find(*ds, "embedding.word_embeddings.weight");
  REQUIRE(e != nullptr);
  CHECK(e->shape == Shape{32, 4});
  CHECK(e->dtype == DType::kBFloat16);
  const Destination* k = Find(*ds, "decoder.layers.3.k.weight");
  REQUIRE(k != nullptr);
  CHECK(k->shape == Shape{2, 4});
  REQUIRE(k->slices.size() == 1);
  CHECK(k->slices[0].source == 1);
  CHECK(k->slices[0].source_begin == 8);
  CHECK(k->slices[0].length == 2);
  const Destination* fc1 = Find(*ds, "decoder.layers.3.mlp.linear_fc1.weight");
  REQUIRE(fc1 != nullptr);
  CHECK(fc1->shape == Shape{12, 4});
  REQUIRE(fc1->slices.size() == 2);
  CHECK(fc1->slices[0].source == 3);  // gate first
  CHECK(fc1->slices[0].dest_begin == 0);
  CHECK(fc1->slices[1].source == 2);
  CHECK(fc1->slices[1].dest_begin == 6);
  const Destination* hb = Find(*ds, "h0.b");
  REQUIRE(hb != nullptr);
  CHECK(hb->axis == 1);
  CHECK(hb->shape == Shape{2, 3});
  CHECK(hb->slices[0].source_begin == 3);
}

TEST_CASE("sources no rule matches are named, or kept under their names", "[interop]") {
  auto mapping = KeyMapping::Parse(kRules, "rules.json");
  REQUIRE_OK(mapping.status());
  const std::vector<SourceTensor> sources = {{"model.embed_tokens.weight", DType::kFloat32, {4}},
                                             {"lm_head.weight", DType::kFloat32, {4}},
                                             {"model.norm.weight", DType::kFloat32, {4}}};
  CHECK_THAT(mapping->Apply(sources, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "2 tensor(s) match no rule: 'lm_head.weight', 'model.norm.weight'"));
  auto kept = mapping->Apply(sources, true);
  REQUIRE_OK(kept.status());
  CHECK(Find(*kept, "lm_head.weight") != nullptr);
  CHECK(Find(*kept, "embedding.word_embeddings.weight") != nullptr);
}

TEST_CASE("splits and concats that do not fit, and collisions, are refused naming the tensors", "[interop]") {
  auto mapping = KeyMapping::Parse(kRules, "rules.json");
  REQUIRE_OK(mapping.status());
  CHECK_THAT(mapping->Apply({{"model.layers.1.self_attn.qkv_proj.weight", DType::kFloat32, {13, 4}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument,
                      "tensor 'model.layers.1.self_attn.qkv_proj.weight' (rule 1 "));
  CHECK_THAT(mapping->Apply({{"model.layers.1.self_attn.qkv_proj.weight", DType::kFloat32, {13, 4}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "does not split into parts of 12 in all"));
  CHECK_THAT(mapping->Apply({{"model.layers.0.attn.halves", DType::kInt64, {2, 5}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "does not split into 2 equal parts"));
  CHECK_THAT(mapping->Apply({{"model.layers.1.mlp.gate_proj.weight", DType::kFloat32, {6, 4}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument,
                      "concat destination 'decoder.layers.1.mlp.linear_fc1.weight' (rule 2 "));
  CHECK_THAT(mapping->Apply({{"model.layers.1.mlp.gate_proj.weight", DType::kFloat32, {6, 4}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "lacks its parts 'up'"));
  CHECK_THAT(mapping
                 ->Apply({{"model.layers.1.mlp.gate_proj.weight", DType::kFloat32, {6, 4}},
                          {"model.layers.1.mlp.up_proj.weight", DType::kFloat32, {6, 5}}},
                         false)
                 .status(),
             StatusIs(StatusCode::kInvalidArgument, "does not fit the parts before it"));
  CHECK_THAT(mapping
                 ->Apply({{"model.layers.1.mlp.gate_proj.weight", DType::kFloat32, {6, 4}},
                          {"model.layers.1.mlp.up_proj.weight", DType::kBFloat16, {6, 4}}},
                         false)
                 .status(),
             StatusIs(StatusCode::kInvalidArgument, "dtype bfloat16"));
  auto rename = KeyMapping::Parse(R"j({"rules": [{"match": "(a|b)", "to": "same"}]})j", "r.json");
  REQUIRE_OK(rename.status());
  CHECK_THAT(rename->Apply({{"a", DType::kFloat32, {1}}, {"b", DType::kFloat32, {1}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "two tensors would both become 'same' (from 'a' and 'b')"));
  // RE2: no backreferences (std::regex's compiler overflowed on "\\5555...": UB), linear matching.
  CHECK_THAT(KeyMapping::Parse(R"j({"rules": [{"match": "(a)\\1", "to": "x"}]})j", "r.json").status(),
             StatusIs(StatusCode::kInvalidArgument, "not a regular expression"));
  auto slow = KeyMapping::Parse(R"j({"rules": [{"match": "(a*)*b", "to": "x"}]})j", "r.json");
  REQUIRE_OK(slow.status());
  CHECK_THAT(slow->Apply({{std::string(100000, 'a'), DType::kFloat32, {1}}}, false).status(),
             StatusIs(StatusCode::kInvalidArgument, "match no rule"));
}

TEST_CASE("malformed rules files are refused naming the rule", "[interop]") {
  auto parse = [](const std::string& json) { return KeyMapping::Parse(json, "r.json").status(); };
  CHECK_THAT(parse("{"), StatusIs(StatusCode::kInvalidArgument, "rules file 'r.json': not JSON"));
  CHECK_THAT(parse(R"j({"rule": []})j"), StatusIs(StatusCode::kInvalidArgument, "expected {\"rules\": [...]}"));
  CHECK_THAT(parse(R"j({"rules": [{"to": "x"}]})j"), StatusIs(StatusCode::kInvalidArgument, "rule 0 has no \"match\""));
  CHECK_THAT(parse(R"j({"rules": [{"match": "(", "to": "x"}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "rule 0 ('('): not a regular expression"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "a(b)", "to": "{2}"}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "refers to group 2 but the expression has 1"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "a", "to": "{x}"}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "has a malformed {N}"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "a", "split": {"into": [{"to": "x", "size": 1}, {"to": "y"}]}}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "give every split part a size, or none"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "(a)", "to": "x", "concat": {"by": 2, "order": ["a"]}}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "concat \"by\" is group 2 but the expression has 1"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "(a)", "to": "x", "concat": {"by": 1, "order": ["a", "a"]}}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "names 'a' twice"));
  CHECK_THAT(parse(R"j({"rules": [{"match": "a"}]})j"),
             StatusIs(StatusCode::kInvalidArgument, "needs \"to\", \"split\" or \"concat\""));
}

}  // namespace
}  // namespace dcp::interop
