// Copyright (c) dcp authors.

#include "engine/inspect/elements.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

namespace dcp::inspect {
namespace {

TEST_CASE("Narrow float formats decode to their values", "[inspect]") {
  CHECK(HalfToFloat(0x3c00) == 1.0f);
  CHECK(HalfToFloat(0xc000) == -2.0f);
  CHECK(HalfToFloat(0x7bff) == 65504.0f);
  CHECK(HalfToFloat(0x0001) == std::ldexp(1.0f, -24));
  CHECK(HalfToFloat(0x3555) == Approx(0.33325195f));
  CHECK(std::isinf(HalfToFloat(0xfc00)));
  CHECK(HalfToFloat(0xfc00) < 0);
  CHECK(std::isnan(HalfToFloat(0x7e00)));
  CHECK(std::signbit(HalfToFloat(0x8000)));
  CHECK(BFloat16ToFloat(0x3f80) == 1.0f);
  CHECK(BFloat16ToFloat(0xc0a0) == -5.0f);
  CHECK(std::isnan(BFloat16ToFloat(0x7fc0)));
  // float8_e4m3 (E4M3FN): bias 7, max 448, no infinities, S.1111.111 is NaN.
  CHECK(Float8E4M3ToFloat(0x38) == 1.0f);
  CHECK(Float8E4M3ToFloat(0x7e) == 448.0f);
  CHECK(Float8E4M3ToFloat(0xfe) == -448.0f);
  CHECK(Float8E4M3ToFloat(0x01) == std::ldexp(1.0f, -9));
  CHECK(Float8E4M3ToFloat(0x08) == std::ldexp(1.0f, -6));
  CHECK(std::isnan(Float8E4M3ToFloat(0x7f)));
  CHECK(Float8E4M3ToFloat(0x78) == 256.0f);
  // float8_e5m2: bias 15, max 57344, infinities and NaNs.
  CHECK(Float8E5M2ToFloat(0x3c) == 1.0f);
  CHECK(Float8E5M2ToFloat(0x7b) == 57344.0f);
  CHECK(Float8E5M2ToFloat(0x01) == std::ldexp(1.0f, -16));
  CHECK(std::isinf(Float8E5M2ToFloat(0x7c)));
  CHECK(std::isnan(Float8E5M2ToFloat(0x7d)));
  CHECK(Float8E5M2ToFloat(0xc0) == -2.0f);
}

template <typename T>
std::string Format(DType dtype, T v) {
  return FormatElement(dtype, &v);
}

TEST_CASE("FormatElement and ElementToDouble for every dtype", "[inspect]") {
  CHECK(Format(DType::kFloat32, 0.1f) == "0.1");
  CHECK(Format(DType::kFloat64, 0.1) == "0.1");
  CHECK(Format(DType::kFloat64, -1e300) == "-1e+300");
  CHECK(Format(DType::kFloat32, std::nanf("")) == "nan");
  CHECK(Format(DType::kFloat32, -INFINITY) == "-inf");
  CHECK(Format(DType::kBFloat16, uint16_t{0x3dcd}) == "0.1001");  // bfloat16 nearest to 0.1
  CHECK(Format(DType::kFloat16, uint16_t{0x3555}) == "0.33325");
  CHECK(Format(DType::kFloat8E4M3, uint8_t{0x7e}) == "448");
  CHECK(Format(DType::kFloat8E5M2, uint8_t{0x7c}) == "inf");
  CHECK(Format(DType::kInt64, int64_t{-9007199254740993}) == "-9007199254740993");  // exact, beyond 2^53
  CHECK(Format(DType::kUInt64, uint64_t{18446744073709551615u}) == "18446744073709551615");
  CHECK(Format(DType::kInt8, int8_t{-128}) == "-128");
  CHECK(Format(DType::kUInt8, uint8_t{255}) == "255");
  CHECK(Format(DType::kInt16, int16_t{-300}) == "-300");
  CHECK(Format(DType::kUInt16, uint16_t{65535}) == "65535");
  CHECK(Format(DType::kInt32, int32_t{-70000}) == "-70000");
  CHECK(Format(DType::kUInt32, uint32_t{4000000000u}) == "4000000000");
  CHECK(Format(DType::kBool, uint8_t{2}) == "true");
  CHECK(Format(DType::kBool, uint8_t{0}) == "false");
  // Complex numbers: real and imaginary parts as Python prints them, the
  // magnitude as the number.
  const float c64[] = {1.5f, -2};
  CHECK(FormatElement(DType::kComplex64, c64) == "1.5-2j");
  CHECK(ElementToDouble(DType::kComplex64, c64) == Approx(std::sqrt(1.5 * 1.5 + 4)));
  const double c128[] = {0.1, NAN};
  CHECK(FormatElement(DType::kComplex128, c128) == "0.1+nanj");
  CHECK(std::isnan(ElementToDouble(DType::kComplex128, c128)));
  const float big[] = {3e38f, 3e38f};  // finite, |z| past FLT_MAX
  CHECK(ElementToDouble(DType::kComplex64, big) == Approx(std::sqrt(2.0) * 3e38));
  const double nan_inf[] = {NAN, INFINITY};  // a NaN part makes the magnitude NaN
  CHECK(std::isnan(ElementToDouble(DType::kComplex128, nan_inf)));
  const double c128_inf[] = {-INFINITY, 1e300};
  CHECK(FormatElement(DType::kComplex128, c128_inf) == "-inf+1e+300j");
  CHECK(std::isinf(ElementToDouble(DType::kComplex128, c128_inf)));
  for (DType d : AllDTypes()) {
    const uint64_t zero[2] = {0, 0};  // as wide as the widest dtype (complex128)
    INFO(DTypeName(d));
    CHECK(DTypeSize(d) <= sizeof(zero));
    CHECK(ElementToDouble(d, zero) == 0.0);
    CHECK(FormatElement(d, zero) == (d == DType::kBool ? "false" : IsComplex(d) ? "0+0j" : "0"));
  }
}

TEST_CASE("ElementStats accumulates over blocks", "[inspect]") {
  const float a[] = {1, 2, NAN, 3};
  const float b[] = {INFINITY, 4, 0, -INFINITY};
  ElementStats s;
  CHECK(std::isnan(s.min()));
  CHECK(std::isnan(s.std()));
  s.Add(DType::kFloat32, a, 4);
  s.Add(DType::kFloat32, b, 4);
  CHECK(s.count() == 8);
  CHECK(s.finite() == 5);
  CHECK(s.nan() == 1);
  CHECK(s.inf() == 2);
  CHECK(s.zeros() == 1);
  CHECK(s.min() == 0);
  CHECK(s.max() == 4);
  CHECK(s.mean() == Approx(2.0));
  CHECK(s.std() == Approx(std::sqrt(2.0)));
  // Blocks with different means merge exactly.
  ElementStats merged;
  const double x[] = {1, 2}, y[] = {10};
  merged.Add(DType::kFloat64, x, 2);
  merged.Add(DType::kFloat64, y, 1);
  CHECK(merged.mean() == Approx(13.0 / 3));
  CHECK(merged.std() ==
        Approx(std::sqrt((std::pow(1 - 13.0 / 3, 2) + std::pow(2 - 13.0 / 3, 2) + std::pow(10 - 13.0 / 3, 2)) / 3)));
  const double all_nan[] = {NAN};
  merged.Add(DType::kFloat64, all_nan, 1);  // a block without finite elements changes nothing else
  CHECK(merged.mean() == Approx(13.0 / 3));
  CHECK(merged.count() == 4);
  ElementStats ints;
  const int16_t v[] = {-5, 5, 5, -5};
  ints.Add(DType::kInt16, v, 4);
  CHECK(ints.mean() == 0);
  CHECK(ints.std() == 5);
  CHECK(ints.nan() == 0);
  // Complex tensors: statistics of the magnitudes.
  ElementStats complex;
  const float z[] = {3, 4, 0, 0, NAN, 1, 0, -2};
  complex.Add(DType::kComplex64, z, 4);
  CHECK(complex.count() == 4);
  CHECK(complex.nan() == 1);
  CHECK(complex.zeros() == 1);
  CHECK(complex.min() == 0);
  CHECK(complex.max() == 5);
  CHECK(complex.mean() == Approx(7.0 / 3));
}

}  // namespace
}  // namespace dcp::inspect
