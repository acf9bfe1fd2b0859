// Copyright (c) dcp authors.

#include "engine/inspect/dump.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/base/file.h"
#include "engine/inspect/render.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

const InspectFixture& Fixture() {
  // Destroyed at exit, and its directory with it (a leaked `new` left one
  // /tmp/dcp-test-* behind per test process).
  static const InspectFixture f;
  return f;
}

Box Resolve(const std::string& text, const Shape& shape) {
  return ValueOrDie(ResolveRegion(ValueOrDie(ParseRegionSpec(text)), shape, "t"));
}

TEST_CASE("Region arguments, numpy-like", "[inspect]") {
  const Shape s{10, 20, 30};
  CHECK(Resolve("", s) == Box{{0, 0, 0}, {10, 20, 30}});
  CHECK(Resolve("2:5", s) == Box{{2, 0, 0}, {3, 20, 30}});
  CHECK(Resolve("2:5, 3", s) == Box{{2, 3, 0}, {3, 1, 30}});
  CHECK(Resolve(":, :4, -3:", s) == Box{{0, 0, 27}, {10, 4, 3}});
  CHECK(Resolve("[0:4, 8:16]", s) == Box{{0, 8, 0}, {4, 8, 30}});
  CHECK(Resolve("-1", s) == Box{{9, 0, 0}, {1, 20, 30}});
  CHECK(Resolve("3:3", s) == Box{{3, 0, 0}, {0, 20, 30}});
  CHECK(Resolve("", {}) == Box{});
  REQUIRE_THAT(ParseRegionSpec("1:2:3").status(), StatusIs(StatusCode::kInvalidArgument, "steps (a:b:c)"));
  REQUIRE_THAT(ParseRegionSpec("a").status(), StatusIs(StatusCode::kInvalidArgument, "'a' is not an index"));
  REQUIRE_THAT(ParseRegionSpec("1,,2").status(), StatusIs(StatusCode::kInvalidArgument, "empty axis"));
  auto bad = [&](const std::string& text, const Shape& shape) {
    return ResolveRegion(ValueOrDie(ParseRegionSpec(text)), shape, "tensor 'x'").status();
  };
  REQUIRE_THAT(bad("0:11", s), StatusIs(StatusCode::kInvalidArgument, "tensor 'x': axis 0 of the region is outside"));
  REQUIRE_THAT(bad("5:4", s), StatusIs(StatusCode::kInvalidArgument, "axis 0"));
  REQUIRE_THAT(bad(":,20", s), StatusIs(StatusCode::kInvalidArgument, "axis 1"));
  REQUIRE_THAT(bad("-11", s), StatusIs(StatusCode::kInvalidArgument, "axis 0"));
  REQUIRE_THAT(bad("1,1,1,1", s), StatusIs(StatusCode::kInvalidArgument, "region has 4 axes but the tensor has 3"));
  REQUIRE_THAT(bad("0", {}), StatusIs(StatusCode::kInvalidArgument, "has 0"));
}

TEST_CASE("NpyHeader follows the .npy format 1.0", "[inspect]") {
  const std::string h = NpyHeader("<f4", {3, 4});
  CHECK(h.size() % 64 == 0);
  CHECK(h.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const size_t len = static_cast<uint8_t>(h[8]) | static_cast<uint8_t>(h[9]) << 8;
  CHECK(len + 10 == h.size());
  CHECK(h.substr(10, 59) == "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  CHECK(h.back() == '\n');
  CHECK(NpyHeader("|b1", {7}).find("'shape': (7,), }") != std::string::npos);
  CHECK(NpyHeader("<f8", {}).find("'shape': (), }") != std::string::npos);
  CHECK(NpyDescr(DType::kBFloat16) == "<f4");
  CHECK(NpyDescr(DType::kInt16) == "<i2");
  CHECK(NpyDescr(DType::kUInt64) == "<u8");
}

TEST_CASE("Dump: values and statistics of a region", "[inspect]") {
  auto reader = Fixture().Reader();
  DumpOptions o;
  o.count = 4;
  const DumpReport d = ValueOrDie(Dump(reader.get(), 5, "stats", o));
  CHECK(d.stats.count() == 12);
  CHECK(d.stats.nan() == 1);
  CHECK(d.stats.inf() == 1);
  CHECK(d.stats.zeros() == 1);
  CHECK(d.stats.min() == 0);
  CHECK(d.stats.max() == 9);
  CHECK(d.stats.mean() == Approx(4.5));
  CHECK(d.stats.std() == Approx(std::sqrt(8.25)));
  CHECK(d.head_count() == 4);
  CHECK(d.tail_count() == 4);
  const std::string text = RenderDumpText(d);
  INFO(text);
  CHECK(text.find("tensor 'stats' of step 5: float32 (12,), region [0:12] (12 elements)") != std::string::npos);
  CHECK(text.find("min 0  max 9  mean 4.5  std 2.87228  nan 1  inf 1  zeros 1") != std::string::npos);
  CHECK(text.find("first 4: 0 1 2 3") != std::string::npos);
  CHECK(text.find("last 4: 8 9 nan inf") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderDumpJson(d));
  CHECK(j["stats"]["nan"] == 1);
  CHECK(j["stats"]["mean"] == 4.5);
  CHECK(j["tail"] == nlohmann::json::array({8.0, 9.0, "nan", "inf"}));
  CHECK(j["region"]["shape"] == nlohmann::json::array({12}));

  // A small region: every value shown once.
  o.region = "2:5";
  const DumpReport few = ValueOrDie(Dump(reader.get(), 5, "stats", o));
  CHECK(few.head_count() == 3);
  CHECK(few.tail_count() == 0);
  CHECK(RenderDumpText(few).find("values: 2 3 4") != std::string::npos);

  // A region of layer.w crossing chunks and ranks, read in tiny blocks.
  o.region = "60:130, 5:9";
  o.count = 1000;
  o.block_bytes = 64;
  const DumpReport w = ValueOrDie(Dump(reader.get(), 7, "layer.w", o));
  const Box box{{60, 5}, {70, 4}};
  CHECK(w.region == box);
  CHECK(w.head + w.tail == Fixture().RegionBytes(7, "layer.w", box));
  uint64_t nan = 0;
  const std::string expect = Fixture().RegionBytes(7, "layer.w", box);
  for (size_t i = 0; i < expect.size(); i += 4) {
    float v;
    std::memcpy(&v, expect.data() + i, 4);
    nan += std::isnan(v);
  }
  CHECK(w.stats.nan() == nan);
  CHECK(w.stats.count() == 280);

  o = DumpOptions();
  const DumpReport mask = ValueOrDie(Dump(reader.get(), 5, "mask", o));
  CHECK(RenderDumpText(mask).find("first 8: true false false true false false true false") != std::string::npos);
  CHECK(mask.stats.mean() == Approx(0.4));
  const DumpReport scalar = ValueOrDie(Dump(reader.get(), 5, "scalar", o));
  CHECK(scalar.region == Box{});
  CHECK(scalar.head == Fixture().Values(5, "scalar"));
}

TEST_CASE("Dump writes .npy files NumPy can load", "[inspect]") {
  auto reader = Fixture().Reader();
  testing::TempDir dir;
  DumpOptions o;
  o.region = "1:3, 0:4";
  o.npy_path = dir.Sub("w.npy");
  const DumpReport d = ValueOrDie(Dump(reader.get(), 5, "layer.w", o));
  const std::string file = ValueOrDie(base::ReadFile(o.npy_path, 1 << 20));
  const std::string header = NpyHeader("<f4", {2, 4});
  REQUIRE(file.size() == header.size() + 2 * 4 * 4);
  CHECK(file.substr(0, header.size()) == header);
  CHECK(file.substr(header.size()) == Fixture().RegionBytes(5, "layer.w", Box{{1, 0}, {2, 4}}));
  CHECK(RenderDumpText(d).find("wrote " + o.npy_path + " (<f4)") != std::string::npos);

  // bfloat16 is written as float32, exactly.
  o.region = "0:2, 0:3";
  o.npy_path = dir.Sub("emb.npy");
  const DumpReport e = ValueOrDie(Dump(reader.get(), 5, "emb", o));
  CHECK(RenderDumpText(e).find("bfloat16 converted exactly to float32") != std::string::npos);
  const std::string ef = ValueOrDie(base::ReadFile(o.npy_path, 1 << 20));
  const std::string eh = NpyHeader("<f4", {2, 3});
  REQUIRE(ef.size() == eh.size() + 6 * 4);
  const std::string src = Fixture().RegionBytes(5, "emb", Box{{0, 0}, {2, 3}});
  for (size_t i = 0; i < 6; ++i) {
    uint32_t want = static_cast<uint32_t>(static_cast<uint8_t>(src[2 * i]) | static_cast<uint8_t>(src[2 * i + 1]) << 8)
                    << 16;
    uint32_t got;
    std::memcpy(&got, ef.data() + eh.size() + 4 * i, 4);
    CHECK(got == want);
  }
}

TEST_CASE("Dump with raw_bits writes the stored bits as unsigned integers", "[inspect]") {
  CHECK(NpyRawDescr(DType::kBFloat16) == "<u2");
  CHECK(NpyRawDescr(DType::kFloat16) == "<u2");
  CHECK(NpyRawDescr(DType::kFloat8E4M3) == "|u1");
  CHECK(NpyRawDescr(DType::kFloat8E5M2) == "|u1");
  CHECK(NpyRawDescr(DType::kBool) == "|u1");
  CHECK(NpyRawDescr(DType::kInt32) == "<u4");
  CHECK(NpyRawDescr(DType::kFloat64) == "<u8");
  // NumPy has both complex types: their stored bits are its own.
  CHECK(NpyRawDescr(DType::kComplex64) == "<c8");
  CHECK(NpyRawDescr(DType::kComplex128) == "<c16");
  CHECK(NpyDescr(DType::kComplex128) == "<c16");

  auto reader = Fixture().Reader();
  testing::TempDir dir;
  struct Case {
    std::string key;
    std::string region;
    Box box;
    std::string descr;
  };
  const std::vector<Case> cases = {
      {"emb", "1:3, 2:7", Box{{1, 2}, {2, 5}}, "<u2"},     // bfloat16: no conversion to float32
      {"bias", "", Box{{0}, {16}}, "<u2"},                 // float16
      {"f8", "2:5", Box{{2, 0}, {3, 8}}, "|u1"},           // fp8
      {"layer.w", "60:130, 5:9", Box{{60, 5}, {70, 4}}, "<u4"},  // crosses chunks and ranks
      {"scalar", "", Box{}, "<u8"},
  };
  for (const Case& c : cases) {
    INFO(c.key);
    DumpOptions o;
    o.region = c.region;
    o.npy_path = dir.Sub(c.key + ".npy");
    o.raw_bits = true;
    o.block_bytes = 64;  // several blocks appended
    const DumpReport d = ValueOrDie(Dump(reader.get(), 5, c.key, o));
    CHECK(d.npy_descr == c.descr);
    CHECK(d.npy_raw_bits);
    const std::string file = ValueOrDie(base::ReadFile(o.npy_path, 1 << 20));
    const std::string header = NpyHeader(c.descr, c.box.shape);
    REQUIRE(file.size() >= header.size());
    CHECK(file.substr(0, header.size()) == header);
    CHECK(file.substr(header.size()) == Fixture().RegionBytes(5, c.key, c.box));
  }

  DumpOptions o;
  o.npy_path = dir.Sub("emb-raw.npy");
  o.raw_bits = true;
  const DumpReport e = ValueOrDie(Dump(reader.get(), 5, "emb", o));
  CHECK(RenderDumpText(e).find("wrote " + o.npy_path + " (<u2, the raw bits of bfloat16)") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderDumpJson(e));
  CHECK(j["npy"]["descr"] == "<u2");
  CHECK(j["npy"]["raw_bits"] == true);

  DumpOptions no_file;
  no_file.raw_bits = true;
  REQUIRE_THAT(Dump(reader.get(), 5, "emb", no_file).status(),
               StatusIs(StatusCode::kInvalidArgument, "dump of 'emb': raw_bits asks for a .npy file"));
}

TEST_CASE("Dump of objects and errors", "[inspect]") {
  auto reader = Fixture().Reader();
  const DumpReport o = ValueOrDie(Dump(reader.get(), 7, "rng/shard_0_2"));
  CHECK(o.is_object);
  CHECK(o.object_size == std::string("rng-of-rank-0-advanced").size());
  CHECK(o.object_bytes == "rng-of-rank-0-advanced");
  CHECK(RenderDumpText(o).find("72 6e 67 2d") != std::string::npos);  // "rng-"
  CHECK(nlohmann::json::parse(RenderDumpJson(o))["size"] == 22);
  REQUIRE_THAT(Dump(reader.get(), 7, "rng").status(),
               StatusIs(StatusCode::kInvalidArgument, "has 2 cells; name one: rng/shard_0_2, rng/shard_1_2"));
  DumpOptions with_region;
  with_region.region = "0";
  REQUIRE_THAT(Dump(reader.get(), 7, "rng/shard_1_2", with_region).status(),
               StatusIs(StatusCode::kInvalidArgument, "is an object"));
  REQUIRE_THAT(Dump(reader.get(), 7, "missing").status(),
               StatusIs(StatusCode::kNotFound, "tensor 'missing' is not in step 7"));
  CHECK(ValueOrDie(Dump(reader.get(), 7, "layer.w", with_region)).region == Box{{0, 0}, {1, 64}});
  DumpOptions outside;
  outside.region = "0:300";
  REQUIRE_THAT(Dump(reader.get(), 7, "layer.w", outside).status(),
               StatusIs(StatusCode::kInvalidArgument, "tensor 'layer.w' of step 7: axis 0"));
  DumpOptions npy;
  npy.npy_path = "/nonexistent-dir/x.npy";
  REQUIRE_THAT(Dump(reader.get(), 7, "emb", npy).status(), StatusIs(StatusCode::kNotFound, "/nonexistent-dir/x.npy"));
}

}  // namespace
}  // namespace dcp::inspect
