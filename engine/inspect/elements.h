// Copyright (c) dcp authors.
//
// Reading tensor elements for people: every dtype dcp stores, decoded to a
// number (fp8, float16 and bfloat16 included; complex numbers to their
// magnitudes), formatted for display, and summarised as streaming statistics
// over any number of blocks.
//
// fp8 formats follow the OCP 8-bit floating point spec as PyTorch implements
// them: float8_e4m3 is E4M3FN (bias 7, no infinities, S.1111.111 is NaN) and
// float8_e5m2 is IEEE-like (bias 15, infinities and NaNs).
//
// Element bytes are little-endian (the byte order dcp stores).
//
// Thread safety: pure functions; an ElementStats is one thread's.

#ifndef DCP_ENGINE_INSPECT_ELEMENTS_H_
#define DCP_ENGINE_INSPECT_ELEMENTS_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "dcp/types.h"

namespace dcp::inspect {

float HalfToFloat(uint16_t bits);
float BFloat16ToFloat(uint16_t bits);
float Float8E4M3ToFloat(uint8_t bits);
float Float8E5M2ToFloat(uint8_t bits);

// The element at `p` as a double (bool: 0 or 1; 64-bit integers beyond 2^53
// are rounded; a complex number: its magnitude |z|, so the statistics below
// of a complex tensor are those of its magnitudes). REQUIRES: `p` points at
// DTypeSize(dtype) bytes.
double ElementToDouble(DType dtype, const void* p);

// The element at `p` for display: integers exactly; float32 and float64 with
// the shortest digits that round-trip ("0.1", not "0.10000000149"); float16,
// bfloat16 and fp8 with as many significant digits as tell any two of their
// values apart (5, 4, 3); "nan", "inf", "-inf"; bools "true"/"false";
// complex numbers as Python prints them without parentheses ("1.5-2j").
std::string FormatElement(DType dtype, const void* p);

// Count, NaN and infinity counts, min, max, mean and standard deviation
// (population) of the finite elements, accumulated block by block.
class ElementStats {
 public:
  // Adds `count` contiguous elements of `dtype` at `data`.
  void Add(DType dtype, const void* data, size_t count);

  uint64_t count() const { return count_; }  // every element
  uint64_t finite() const { return n_; }     // elements in min/max/mean/std
  uint64_t nan() const { return nan_; }
  uint64_t inf() const { return inf_; }
  uint64_t zeros() const { return zeros_; }
  // NaN when no finite element was seen.
  double min() const { return n_ ? min_ : std::numeric_limits<double>::quiet_NaN(); }
  double max() const { return n_ ? max_ : std::numeric_limits<double>::quiet_NaN(); }
  double mean() const { return n_ ? mean_ : std::numeric_limits<double>::quiet_NaN(); }
  double std() const;

 private:
  uint64_t count_ = 0, n_ = 0, nan_ = 0, inf_ = 0, zeros_ = 0;
  double min_ = 0, max_ = 0, mean_ = 0, m2_ = 0;  // of the finite elements (m2_: sum of squared deviations)
};

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_ELEMENTS_H_
