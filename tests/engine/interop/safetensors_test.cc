// Copyright (c) dcp authors.
// Tests of engine/interop/safetensors.cc: headers and indexes as untrusted input.

#include "engine/interop/safetensors.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/engine/interop/safetensors_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::interop {
namespace {

using testing::StatusIs;

TEST_CASE("every dtype but complex128 has a safetensors name and back", "[interop]") {
  for (DType d : AllDTypes()) {
    INFO(DTypeName(d));
    const std::string_view name = SafetensorsDType(d);
    if (d == DType::kComplex128) {  // safetensors has complex64 ("C64") only
      CHECK(name.empty());
      continue;
    }
    REQUIRE_FALSE(name.empty());
    CHECK(DTypeFromSafetensors(name) == d);
  }
  CHECK(SafetensorsDType(DType::kComplex64) == "C64");
  CHECK_FALSE(DTypeFromSafetensors("C128").has_value());
  CHECK_FALSE(DTypeFromSafetensors("F4").has_value());
  REQUIRE_THAT(EncodeSafetensorsHeader({{"z", DType::kComplex128, {2}, 0, 32}}, {}).status(),
               StatusIs(StatusCode::kInvalidArgument, "tensor 'z' has dtype complex128, which safetensors lacks"));
}

TEST_CASE("a header written is read back: tensors in data order, offsets in the file", "[interop]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("m.safetensors");
  WriteSafetensors(path,
                   {{"b", DType::kBFloat16, {3, 5}}, {"a", DType::kInt64, {}}, {"empty", DType::kFloat32, {0, 4}},
                    {"mask", DType::kBool, {7}}},
                   {{"format", "pt"}});
  auto f = ReadSafetensorsHeader(path);
  REQUIRE_OK(f.status());
  REQUIRE(f->tensors.size() == 4);
  CHECK(f->metadata.at("format") == "pt");
  CHECK(f->data_start % 8 == 0);
  // Written in the order given: b, a, empty, mask.
  CHECK(f->tensors[0].name == "b");
  CHECK(f->tensors[0].offset == f->data_start);
  CHECK(f->tensors[0].bytes == 30);
  CHECK(f->tensors[1].name == "a");
  CHECK(f->tensors[1].shape.empty());
  CHECK(f->tensors[1].offset == f->data_start + 30);
  CHECK(f->tensors[3].name == "mask");
  CHECK(f->tensors[3].dtype == DType::kBool);
}

TEST_CASE("malformed headers are refused naming the file and the tensor", "[interop]") {
  const std::string p = "m.safetensors";
  auto parse = [&](const std::string& json, uint64_t data) { return ParseSafetensorsHeader(json, data, p).status(); };
  const std::string ok_entry = R"j("w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]})j";
  REQUIRE_OK(parse("{" + ok_entry + "}", 16));
  CHECK_THAT(parse("{\"w\": ", 16), StatusIs(StatusCode::kDataLoss, "'m.safetensors': the header is not JSON"));
  CHECK_THAT(parse("[1, 2]", 16), StatusIs(StatusCode::kDataLoss, "not a JSON object"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [0, 2]}})j", 2),
             StatusIs(StatusCode::kDataLoss, "tensor 'w': dtype 'F8_E8M0' is not one dcp knows"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [-2, 2], "data_offsets": [0, 16]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "tensor 'w': shape [-2,2] is not made of non-negative integers"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "not made of non-negative integers"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "too many elements"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "tensor 'w': 16 bytes do not hold shape [2,3] of F32"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})j", 8),
             StatusIs(StatusCode::kDataLoss, "tensor 'w': data_offsets [0, 16] lie outside the 8 data bytes"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "lie outside"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2, 2]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "tensor 'w' lacks dtype, shape or data_offsets"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "data_offsets is not a pair"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                       "v": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})j",
                   16),
             StatusIs(StatusCode::kDataLoss, "overlaps the tensor before it"));
  CHECK_THAT(parse(R"j({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})j", 16),
             StatusIs(StatusCode::kDataLoss, "bytes [0, 8) before tensor 'w' belong to no tensor"));
  CHECK_THAT(parse("{" + ok_entry + "}", 24),
             StatusIs(StatusCode::kDataLoss, "the tensors end at data byte 16 but the file holds 24"));
  CHECK_THAT(parse(R"j({"__metadata__": {"format": 1}})j", 0),
             StatusIs(StatusCode::kDataLoss, "__metadata__ entry 'format' is not a string"));
  CHECK_THAT(parse(R"j({"w": 3})j", 0), StatusIs(StatusCode::kDataLoss, "tensor 'w' is not described by an object"));
}

TEST_CASE("header lengths are bounded before anything is read or allocated", "[interop]") {
  testing::TempDir dir;
  const std::string huge = dir.Sub("huge.safetensors");
  WriteRaw(huge, "{}", "", uint64_t{100} << 30);  // declares 100 GiB
  CHECK_THAT(ReadSafetensorsHeader(huge).status(),
             StatusIs(StatusCode::kDataLoss, "declares 107374182400 bytes, more than the limit of 100000000"));
  const std::string past = dir.Sub("past.safetensors");
  WriteRaw(past, "{}", "", 4096);
  CHECK_THAT(ReadSafetensorsHeader(past).status(),
             StatusIs(StatusCode::kDataLoss, "'" + past + "': the header declares 4096 bytes but only 2 follow"));
  const std::string tiny = dir.Sub("tiny.safetensors");
  std::ofstream(tiny) << "abc";
  CHECK_THAT(ReadSafetensorsHeader(tiny).status(), StatusIs(StatusCode::kDataLoss, "shorter than the 8-byte length"));
  CHECK_THAT(ReadSafetensorsHeader(dir.Sub("none.safetensors")).status(), StatusIs(StatusCode::kNotFound));
  CHECK_THAT(ReadSafetensorsHeader(dir.path()).status(), StatusIs(StatusCode::kDataLoss, "not a regular file"));
}

TEST_CASE("names safetensors cannot hold are refused when writing", "[interop]") {
  CHECK_THAT(EncodeSafetensorsHeader({{"__metadata__", DType::kFloat32, {1}, 0, 4}}, {}).status(),
             StatusIs(StatusCode::kInvalidArgument, "reserves the name"));
  CHECK_THAT(EncodeSafetensorsHeader({{std::string("bad\xff", 4), DType::kFloat32, {1}, 0, 4}}, {}).status(),
             StatusIs(StatusCode::kInvalidArgument, "not valid UTF-8"));
}

TEST_CASE("indexes: the weight map, its files, and names that would leave the directory", "[interop]") {
  auto ok = ParseSafetensorsIndex(
      R"j({"metadata": {"total_size": 96}, "weight_map": {"a": "m-2.safetensors", "b": "m-1.safetensors",
          "c": "m-2.safetensors"}})j",
      "i.json");
  REQUIRE_OK(ok.status());
  CHECK(ok->files == std::vector<std::string>{"m-1.safetensors", "m-2.safetensors"});
  CHECK(ok->weight_map.at("c") == "m-2.safetensors");
  CHECK(ok->metadata.at("total_size") == "96");
  CHECK_THAT(ParseSafetensorsIndex(R"j({"weight_map": {"a": "../x.safetensors"}})j", "i.json").status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'a' names file '../x.safetensors'"));
  CHECK_THAT(ParseSafetensorsIndex(R"j({"weight_map": {"a": 3}})j", "i.json").status(),
             StatusIs(StatusCode::kDataLoss, "the file of tensor 'a' is not a string"));
  CHECK_THAT(ParseSafetensorsIndex(R"j({"metadata": {}})j", "i.json").status(),
             StatusIs(StatusCode::kDataLoss, "'i.json': it has no \"weight_map\" object"));
  CHECK_THAT(ParseSafetensorsIndex("nope", "i.json").status(), StatusIs(StatusCode::kDataLoss, "not JSON"));
  auto back = ParseSafetensorsIndex(EncodeSafetensorsIndex(ok->weight_map, 96), "j.json");
  REQUIRE_OK(back.status());
  CHECK(back->weight_map == ok->weight_map);
}

}  // namespace
}  // namespace dcp::interop
