// Copyright (c) dcp authors.

#include "engine/inspect/elements.h"

#include <fmt/core.h>

#include <algorithm>
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

std::string NonFinite(double v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

// float32 and float64: the shortest digits that round-trip at the dtype's
// own precision.
template <typename T>
std::string FormatFloat(T v) {
  if (!std::isfinite(v)) return NonFinite(v);
  return fmt::format("{}", v);
}

// A complex element as Python and NumPy print it without parentheses:
// "1.5-2j", "0+0j", "nan+infj".
template <typename T>
std::string FormatComplex(const void* p) {
  const T re = Load<T>(p), im = Load<T>(static_cast<const char*>(p) + sizeof(T));
  const std::string imag = FormatFloat(im);
  return FormatFloat(re) + (imag[0] == '-' ? "" : "+") + imag + "j";
}

// |re + im j| in double (a complex64's magnitude may pass FLT_MAX); NaN if
// either part is (std::hypot gives inf for (NaN, inf)).
double Magnitude(double re, double im) {
  if (std::isnan(re) || std::isnan(im)) return std::numeric_limits<double>::quiet_NaN();
  return std::hypot(re, im);
}

// Narrower formats: enough significant digits to tell any two values of the
// format apart (ceil(mantissa bits * log10 2) + 1).
std::string FormatNarrow(double v, int digits) {
  if (!std::isfinite(v)) return NonFinite(v);
  return fmt::format("{:.{}g}", v, digits);
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
    case DType::kComplex64:
      return Magnitude(Load<float>(p), Load<float>(static_cast<const char*>(p) + 4));
    case DType::kComplex128:
      return Magnitude(Load<double>(p), Load<double>(static_cast<const char*>(p) + 8));
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
    case DType::kFloat32: return FormatFloat(Load<float>(p));
    case DType::kFloat16: return FormatNarrow(ElementToDouble(dtype, p), 5);
    case DType::kBFloat16: return FormatNarrow(ElementToDouble(dtype, p), 4);
    case DType::kFloat8E4M3:
    case DType::kFloat8E5M2: return FormatNarrow(ElementToDouble(dtype, p), 3);
    case DType::kComplex64: return FormatComplex<float>(p);
    case DType::kComplex128: return FormatComplex<double>(p);
  }
  return "?";
}

namespace {

// Statistics of one block, two passes over memory that is already there
// (cheaper than Welford's division per element), merged with Chan's formula.
template <typename Decode>
void AddBlock(const char* p, size_t size, size_t count, Decode decode, uint64_t* nan, uint64_t* inf, uint64_t* zeros,
              uint64_t* n, double* min, double* max, double* mean, double* m2) {
  uint64_t bn = 0;
  double bmin = std::numeric_limits<double>::infinity(), bmax = -bmin, sum = 0;
  for (size_t i = 0; i < count; ++i) {
    const double v = decode(p + i * size);
    if (std::isnan(v)) {
      ++*nan;
    } else if (std::isinf(v)) {
      ++*inf;
    } else {
      ++bn;
      sum += v;
      bmin = std::min(bmin, v);
      bmax = std::max(bmax, v);
      *zeros += v == 0;
    }
  }
  if (bn == 0) return;
  const double bmean = sum / static_cast<double>(bn);
  double bm2 = 0;
  for (size_t i = 0; i < count; ++i) {
    const double v = decode(p + i * size);
    if (std::isfinite(v)) bm2 += (v - bmean) * (v - bmean);
  }
  if (*n == 0) {
    *min = bmin;
    *max = bmax;
  } else {
    *min = std::min(*min, bmin);
    *max = std::max(*max, bmax);
  }
  const double total = static_cast<double>(*n + bn);
  const double delta = bmean - *mean;
  *mean += delta * static_cast<double>(bn) / total;
  *m2 += bm2 + delta * delta * static_cast<double>(*n) * static_cast<double>(bn) / total;
  *n += bn;
}

}  // namespace

void ElementStats::Add(DType dtype, const void* data, size_t count) {
  const char* p = static_cast<const char*>(data);
  count_ += count;
  auto add = [&](auto decode) {
    AddBlock(p, DTypeSize(dtype), count, decode, &nan_, &inf_, &zeros_, &n_, &min_, &max_, &mean_, &m2_);
  };
  switch (dtype) {
    case DType::kFloat32: return add([](const char* q) -> double { return Load<float>(q); });
    case DType::kFloat64: return add([](const char* q) { return Load<double>(q); });
    case DType::kBFloat16: return add([](const char* q) -> double { return BFloat16ToFloat(Load<uint16_t>(q)); });
    case DType::kFloat16: return add([](const char* q) -> double { return HalfToFloat(Load<uint16_t>(q)); });
    default: return add([dtype](const char* q) { return ElementToDouble(dtype, q); });
  }
}

double ElementStats::std() const {
  if (n_ == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(m2_ / static_cast<double>(n_));
}

}  // namespace dcp::inspect
