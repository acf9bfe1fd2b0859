// Copyright (c) dcp authors.

#include "engine/inspect/render.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

namespace dcp::inspect {
namespace {

TEST_CASE("HumanBytes and TimeString", "[inspect]") {
  CHECK(HumanBytes(0) == "0 B");
  CHECK(HumanBytes(1023) == "1023 B");
  CHECK(HumanBytes(1536) == "1.50 KiB");
  CHECK(HumanBytes(uint64_t{3} << 30) == "3.00 GiB");
  CHECK(TimeString(0) == "1970-01-01 00:00:00Z");
  CHECK(TimeString(int64_t{1700000000} * 1000000000) == "2023-11-14 22:13:20Z");
}

TEST_CASE("ProgressLine", "[inspect]") {
  CHECK(ProgressLine(0, 100, 0, 4, "records", 0, 10) == "[----------]   0%  0/4 records  0 B/100 B");
  CHECK(ProgressLine(50, 100, 2, 4, "records", 0, 10) == "[#####-----]  50%  2/4 records  50 B/100 B");
  CHECK(ProgressLine(2048, 2048, 0, 0, "", 2.0, 4) == "[####] 100%  2.00 KiB/2.00 KiB  1.00 KiB/s");
  CHECK(ProgressLine(0, 0, 0, 0, "", 0, 4) == "[####] 100%  0 B/0 B");  // nothing to do is done
}

TEST_CASE("Renderings of empty and unusual results", "[inspect]") {
  CHECK(RenderStepsTable({}) == "no committed steps\n");
  CHECK(RenderStepsJson({}) == "[]\n");
  Value v = Value::Map();
  v.Set("nan", Value(std::nan("")));
  v.Set("inf", Value(-INFINITY));
  v.Set("bad utf8", Value(std::string("a\xff"
                                      "b")));
  v.Set("list", Value::List({Value(1), Value::Null(), Value(true)}));
  v.Set("bf16", Value::Tensor(DType::kBFloat16, {2}, std::string("\x80\x3f\xc0\x7f", 4)));
  const auto j = nlohmann::json::parse(RenderCommonJson(v));
  CHECK(j["nan"] == "nan");
  CHECK(j["inf"] == "-inf");
  CHECK(j["bad utf8"] ==
        "a\xef\xbf\xbd"
        "b");  // U+FFFD
  CHECK(j["list"] == nlohmann::json::array({1, nullptr, true}));
  CHECK(j["bf16"]["values"] == nlohmann::json::array({1.0, "nan"}));
  CHECK(ShortValue(Value(std::string(100, 'x')), 5) == "\"xxxxx...\"");
  CHECK(ShortValue(Value("a\nb")) == "\"a?b\"");
  CHECK(ShortValue(Value(0.5)) == "0.5");
  CHECK(ShortValue(Value::Null()) == "null");
  CHECK(ShortValue(Value::List({Value(1)})) == "[1 items]");
}

}  // namespace
}  // namespace dcp::inspect
