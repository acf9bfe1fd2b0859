// Copyright (c) dcp authors.

#include "tests/testing/tensor_fill.h"

#include <cstring>
#include <vector>

namespace dcp::testing {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t KeySeed(std::string_view key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Calls f(global linear index, element pointer) for every element of the view.
template <typename F>
void ForEach(const Shape& global, const Box& box, const TensorView& v, F f) {
  const size_t rank = box.shape.size();
  const size_t lead = rank - static_cast<size_t>(v.rank());
  const size_t elem = DTypeSize(v.dtype());
  if (box.num_elements() == 0) return;
  std::vector<int64_t> idx(rank, 0);
  for (;;) {
    int64_t linear = 0;
    char* p = static_cast<char*>(v.data());
    for (size_t d = 0; d < rank; ++d) {
      linear = linear * global[d] + box.origin[d] + idx[d];
      if (d >= lead) p += idx[d] * v.strides()[d - lead] * static_cast<int64_t>(elem);
    }
    f(static_cast<uint64_t>(linear), p);
    size_t d = rank;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] < box.shape[d]) break;
      idx[d] = 0;
    }
  }
}

// The bytes of element `i` (up to 16: a complex128): SplitMix words.
struct ElementBytes {
  uint64_t word[2];
  ElementBytes(uint64_t seed, uint64_t i) {
    word[0] = SplitMix(seed + i);
    word[1] = SplitMix(word[0]);
  }
};

}  // namespace

void FillRegion(std::string_view key, const Shape& global_shape, const Box& box, const TensorView& dst) {
  const uint64_t seed = KeySeed(key);
  const size_t elem = DTypeSize(dst.dtype());
  ForEach(global_shape, box, dst, [&](uint64_t i, char* p) {
    const ElementBytes v(seed, i);
    std::memcpy(p, v.word, elem);
  });
}

std::string CheckRegion(std::string_view key, const Shape& global_shape, const Box& box, const TensorView& src) {
  const uint64_t seed = KeySeed(key);
  const size_t elem = DTypeSize(src.dtype());
  std::string error;
  ForEach(global_shape, box, src, [&](uint64_t i, char* p) {
    if (!error.empty()) return;
    const ElementBytes v(seed, i);
    if (std::memcmp(p, v.word, elem) != 0) {
      error = "tensor '" + std::string(key) + "' element " + std::to_string(i) + " of region " + box.ToString() +
              " differs";
    }
  });
  return error;
}

HostTensor::HostTensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), data_(static_cast<size_t>(NumElements(shape_)) * DTypeSize(dtype), '\0') {}

}  // namespace dcp::testing
