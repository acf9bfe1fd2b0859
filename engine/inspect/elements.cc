// Copyright (c) dcp authors.

#include "engine/inspect/elements.h"

#include <fmt/core.h>

#include <cmath>
#include <cstring>

namespace dcp::inspect {
namespace {

template <typename T>
T Load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Formats a finite-or-not float with the shortest digits that round-trip at
// the precision `T` of its dtype.
template <typename T>
std::string FormatFloat(T v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // subnormal (or zero)
  } else if (exp == 31) {
    v = mant == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

float BFloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

float Float8E4M3ToFloat(uint8_t b) {
  const bool sign = b & 0x80;
  const int exp = (b >> 3) & 0xf;
  const int mant = b & 0x7;
  float v;
  if (exp == 0xf && mant == 0x7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -9);  // mant/8 * 2^-6
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x8), exp - 10);  // (1 + mant/8) * 2^(exp-7)
  }
  return sign ? -v : v;
}

float Float8E5M2ToFloat(uint8_t b) {
  const bool sign = b & 0x80;
  const int exp = (b >> 2) & 0x1f;
  const int mant = b & 0x3;
  float v;
  if (exp == 0x1f) {
    v = mant == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -16);  // mant/4 * 2^-14
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x4), exp - 17);  // (1 + mant/4) * 2^(exp-15)
  }
  return sign ? -v : v;
}

double ElementToDouble(DType dtype, const void* p) {
  switch (dtype) {
    case DType::kBool: return Load<uint8_t>(p) != 0 ? 1.0 : 0.0;
    case DType::kUInt8: return Load<uint8_t>(p);
    case DType::kInt8: return Load<int8_t>(p);
    case DType::kInt16: return Load<int16_t>(p);
    case DType::kInt32: return Load<int32_t>(p);
    case DType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DType::kUInt16: return Load<uint16_t>(p);
    case DType::kUInt32: return Load<uint32_t>(p);
    case DType::kUInt64: return static_cast<double>(Load<uint64_t>(p));
    case DType::kFloat16: return HalfToFloat(Load<uint16_t>(p));
    case DType::kBFloat16: return BFloat16ToFloat(Load<uint16_t>(p));
    case DType::kFloat32: return Load<float>(p);
    case DType::kFloat64: return Load<double>(p);
    case DType::kFloat8E4M3: return Float8E4M3ToFloat(Load<uint8_t>(p));
    case DType::kFloat8E5M2: return Float8E5M2ToFloat(Load<uint8_t>(p));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::string FormatElement(DType dtype, const void* p) {
  switch (dtype) {
    case DType::kBool: return Load<uint8_t>(p) != 0 ? "true" : "false";
    case DType::kUInt8: return std::to_string(Load<uint8_t>(p));
    case DType::kInt8: return std::to_string(Load<int8_t>(p));
    case DType::kInt16: return std::to_string(Load<int16_t>(p));
    case DType::kInt32: return std::to_string(Load<int32_t>(p));
    case DType::kInt64: return std::to_string(Load<int64_t>(p));
    case DType::kUInt16: return std::to_string(Load<uint16_t>(p));
    case DType::kUInt32: return std::to_string(Load<uint32_t>(p));
    case DType::kUInt64: return std::to_string(Load<uint64_t>(p));
    case DType::kFloat64: return FormatFloat(Load<double>(p));
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kFloat8E4M3:
    case DType::kFloat8E5M2:
      // Every narrower format is exactly representable as a float.
      return FormatFloat(static_cast<float>(ElementToDouble(dtype, p)));
  }
  return "?";
}

void ElementStats::Add(DType dtype, const void* data, size_t count) {
  const size_t size = DTypeSize(dtype);
  const char* p = static_cast<const char*>(data);
  for (size_t i = 0; i < count; ++i, p += size) {
    const double v = ElementToDouble(dtype, p);
    ++count_;
    if (std::isnan(v)) {
      ++nan_;
      continue;
    }
    if (std::isinf(v)) {
      ++inf_;
      continue;
    }
    if (v == 0) ++zeros_;
    if (n_ == 0) {
      min_ = max_ = v;
    } else {
      min_ = std::min(min_, v);
      max_ = std::max(max_, v);
    }
    ++n_;
    const double delta = v - mean_;
    mean_ += delta / static_cast<double>(n_);
    m2_ += delta * (v - mean_);
  }
}

double ElementStats::std() const {
  if (n_ == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(m2_ / static_cast<double>(n_));
}

}  // namespace dcp::inspect
