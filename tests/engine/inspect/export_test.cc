// Copyright (c) dcp authors.

#include "engine/inspect/export.h"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "dcp/store.h"
#include "engine/base/file.h"
#include "engine/inspect/render.h"
#include "engine/store/key_layout.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

// A safetensors reader written from the format's public description
// (huggingface/safetensors README), independent of the exporter: 8-byte
// little-endian header size N; N bytes of JSON, an object mapping tensor
// names to {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
// "__metadata__" of string values; then the byte buffer, which the tensors
// must index entirely, without holes or overlaps.
struct SafetensorsFile {
  struct Tensor {
    std::string dtype;
    Shape shape;
    std::string bytes;
  };
  uint64_t header_size = 0;
  std::string header;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

size_t ElementSize(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// Empty string on success, else what is wrong.
std::string ParseSafetensors(const std::string& file, SafetensorsFile* out) {
  if (file.size() < 8) return "shorter than 8 bytes";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(file[i]);
  if (n > file.size() - 8) return "header size beyond the file";
  out->header_size = n;
  out->header = file.substr(8, n);
  if (out->header.empty() || out->header[0] != '{') return "header does not start with '{'";
  const nlohmann::json j = nlohmann::json::parse(out->header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "header is not a JSON object";
  const std::string data = file.substr(8 + n);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) return "metadata value " + k + " is not a string";
        out->metadata[k] = s.get<std::string>();
      }
      continue;
    }
    SafetensorsFile::Tensor t;
    t.dtype = v.at("dtype").get<std::string>();
    const size_t elem = ElementSize(t.dtype);
    if (elem == 0) return "unknown dtype " + t.dtype;
    uint64_t count = 1;
    for (const auto& d : v.at("shape")) {
      if (!d.is_number_unsigned()) return name + ": bad shape";
      t.shape.push_back(d.get<int64_t>());
      count *= d.get<uint64_t>();
    }
    const auto& off = v.at("data_offsets");
    if (off.size() != 2) return name + ": data_offsets is not [begin, end]";
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data.size()) return name + ": offsets outside the buffer";
    if (e - b != count * elem) return name + ": offsets do not match shape and dtype";
    ranges.emplace_back(b, e);
    t.bytes = data.substr(b, e - b);
    out->tensors[name] = std::move(t);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [b, e] : ranges) {
    if (b != at) return "hole or overlap at byte " + std::to_string(at) + " of the buffer";
    at = e;
  }
  if (at != data.size()) return "the buffer has unindexed bytes at its end";
  return "";
}

TEST_CASE("Export writes a safetensors file of the full tensors", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  testing::TempDir dir;
  const std::string path = dir.Sub("model.safetensors");
  ExportOptions o;
  o.block_bytes = 1000;  // many blocks per tensor
  uint64_t last_done = 0, last_total = 0, calls = 0;
  o.progress = [&](uint64_t done, uint64_t total) {
    CHECK(done >= last_done);
    last_done = done;
    last_total = total;
    ++calls;
  };
  const ExportReport r = ValueOrDie(ExportSafetensors(reader.get(), 7, path, o));
  CHECK(r.tensors == 8);
  CHECK(r.skipped_objects == 2);
  CHECK(last_done == last_total);
  CHECK(last_done == r.data_bytes);
  CHECK(calls > 8);

  const std::string file = ValueOrDie(base::ReadFile(path, 64 << 20));
  CHECK(file.size() == r.header_bytes + r.data_bytes);
  SafetensorsFile st;
  REQUIRE(ParseSafetensors(file, &st) == "");
  CHECK(st.header_size % 8 == 0);
  CHECK(st.metadata["format"] == "pt");
  CHECK(st.metadata["dcp.step"] == "7");
  REQUIRE(st.tensors.size() == 8);
  const std::map<DType, std::string> names = {
      {DType::kFloat32, "F32"}, {DType::kBFloat16, "BF16"},      {DType::kInt64, "I64"}, {DType::kFloat64, "F64"},
      {DType::kBool, "BOOL"},   {DType::kFloat8E4M3, "F8_E4M3"}, {DType::kInt32, "I32"}};
  for (const std::string& key : f.Keys(7)) {
    INFO(key);
    REQUIRE(st.tensors.count(key) == 1);
    const auto& t = st.tensors[key];
    CHECK(t.dtype == names.at(f.dtype(7, key)));
    CHECK(t.shape == f.shape(7, key));
    CHECK(t.bytes == f.Values(7, key));
  }
  CHECK(st.tensors["scalar"].shape.empty());  // 0-d: shape []
  CHECK(st.header.find("\"scalar\":{\"data_offsets\"") != std::string::npos);
  CHECK(RenderExportText(r).find("exported 8 tensors of step 7 to " + path) != std::string::npos);
  CHECK(nlohmann::json::parse(RenderExportJson(r))["file_bytes"] == file.size());
  CHECK(ValueOrDie(base::ListDir(dir.path())) == std::vector<std::string>{"model.safetensors"});

  // A key filter.
  ExportOptions some;
  some.keys_glob = "[ef]*";
  REQUIRE_OK(ExportSafetensors(reader.get(), 9, dir.Sub("some.safetensors"), some).status());
  SafetensorsFile st2;
  REQUIRE(ParseSafetensors(ValueOrDie(base::ReadFile(dir.Sub("some.safetensors"), 1 << 20)), &st2) == "");
  CHECK(st2.tensors.size() == 2);
  CHECK(st2.tensors["emb"].bytes == f.Values(9, "emb"));
  CHECK(st2.tensors["f8"].dtype == "F8_E4M3");
  CHECK(st2.metadata["dcp.step"] == "9");
  some.keys_glob = "nothing*";
  REQUIRE_THAT(ExportSafetensors(reader.get(), 9, dir.Sub("none.safetensors"), some).status(),
               StatusIs(StatusCode::kNotFound, "no tensor of step 9 matches 'nothing*'"));
  CHECK_FALSE(base::PathExists(dir.Sub("none.safetensors")));
}

TEST_CASE("Export of a corrupt step fails and leaves no file", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  const std::string key =
      storage::ChunkRecordKey(ValueOrDie(reader->Load(5))->manifest().generation, "layer.w", {192, 0});
  REQUIRE_FALSE(CorruptStoredRecord(f.root(), 1, key, 5000).empty());
  testing::TempDir dir;
  REQUIRE_THAT(ExportSafetensors(reader.get(), 5, dir.Sub("x.safetensors")).status(),
               StatusIs(StatusCode::kDataLoss, "tensor 'layer.w' chunk at offset (192, 0) in rank store 1"));
  CHECK(ValueOrDie(base::ListDir(dir.path())).empty());
  REQUIRE_THAT(ExportSafetensors(reader.get(), 4, dir.Sub("x.safetensors")).status(),
               StatusIs(StatusCode::kNotFound, "step 4 is not committed"));
  REQUIRE_THAT(ExportSafetensors(reader.get(), 7, dir.path()).status(),
               StatusIs(StatusCode::kInvalidArgument, "is a directory"));
}

TEST_CASE("Export refuses tensor keys safetensors cannot name", "[inspect]") {
  testing::TempDir dir;
  {
    auto store = ValueOrDie(Store::Open(dir.Sub("store"), nullptr));
    std::vector<float> v(4, 1.0f);
    StateDict sd;
    sd.Add("a", ShardedTensor::Whole("ok", TensorView(v.data(), DType::kFloat32, {4})));
    sd.Add("b", ShardedTensor::Whole("bad\xff", TensorView(v.data(), DType::kFloat32, {4})));
    REQUIRE_OK(store->Put(1, sd));
  }
  auto reader = ValueOrDie(StoreReader::Open(dir.Sub("store")));
  REQUIRE_THAT(ExportSafetensors(reader.get(), 1, dir.Sub("x.safetensors")).status(),
               StatusIs(StatusCode::kInvalidArgument, "not valid UTF-8"));
  CHECK_FALSE(base::PathExists(dir.Sub("x.safetensors")));
  ExportOptions o;
  o.keys_glob = "ok";
  REQUIRE_OK(ExportSafetensors(reader.get(), 1, dir.Sub("x.safetensors"), o).status());
}

TEST_CASE("Export refuses a complex128 tensor before writing any shard", "[inspect]") {
  testing::TempDir dir;
  {
    auto store = ValueOrDie(Store::Open(dir.Sub("store"), nullptr));
    std::vector<float> v(64, 1.0f);
    std::vector<double> z(8, 0.5);
    StateDict sd;
    sd.Add("a", ShardedTensor::Whole("a", TensorView(v.data(), DType::kFloat32, {64})));
    sd.Add("b", ShardedTensor::Whole("b", TensorView(v.data(), DType::kFloat32, {64})));
    sd.Add("z", ShardedTensor::Whole("z", TensorView(z.data(), DType::kComplex128, {4})));
    REQUIRE_OK(store->Put(1, sd));
  }
  auto reader = ValueOrDie(StoreReader::Open(dir.Sub("store")));
  const std::string out = dir.Sub("out");
  REQUIRE_OK(base::CreateDirs(out));
  ExportOptions o;
  o.max_shard_bytes = 256;  // a, b and z in shards of their own: z's comes last
  REQUIRE_THAT(ExportSafetensors(reader.get(), 1, out + "/m.safetensors", o).status(),
               StatusIs(StatusCode::kInvalidArgument, "tensor 'z' has dtype complex128, which safetensors lacks"));
  CHECK(ValueOrDie(base::ListDir(out)).empty());
  o.keys_glob = "[ab]";
  REQUIRE_OK(ExportSafetensors(reader.get(), 1, out + "/m.safetensors", o).status());
  CHECK(ValueOrDie(base::ListDir(out)).size() == 3);  // two shards and the index
}

}  // namespace
}  // namespace dcp::inspect
