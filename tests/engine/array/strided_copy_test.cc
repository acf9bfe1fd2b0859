// Copyright (c) dcp authors.
// Tests of engine/array/strided_copy.cc: strided copies against a naive element loop.

#include "engine/array/strided_copy.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp::array {
namespace {

constexpr char kSentinel = '\x5a';

// A random strided layout of `shape` (strides in bytes): axes in a random
// order, each padded by a random gap, some source axes broadcast (stride 0).
struct Layout {
  std::vector<int64_t> strides;
  size_t span = 0;  // bytes the layout reaches
};

Layout RandomLayout(const Shape& shape, size_t elem, bool allow_broadcast, std::mt19937& rng) {
  const size_t rank = shape.size();
  std::vector<size_t> order(rank);
  std::iota(order.begin(), order.end(), 0);
  if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) std::shuffle(order.begin(), order.end(), rng);
  Layout l;
  l.strides.assign(rank, 0);
  int64_t step = static_cast<int64_t>(elem) * std::uniform_int_distribution<int64_t>(1, 2)(rng);
  for (size_t k = rank; k-- > 0;) {  // order.back() varies fastest
    const size_t axis = order[k];
    if (allow_broadcast && std::uniform_int_distribution<int>(0, 7)(rng) == 0) {
      l.strides[axis] = 0;
      continue;
    }
    l.strides[axis] = step;
    step = step * std::max<int64_t>(shape[axis], 1) + static_cast<int64_t>(elem) *
                                                          std::uniform_int_distribution<int64_t>(0, 2)(rng);
  }
  int64_t last = 0;
  for (size_t d = 0; d < rank; ++d) last += std::max<int64_t>(shape[d] - 1, 0) * l.strides[d];
  l.span = static_cast<size_t>(last) + elem;
  return l;
}

// The reference: one memcpy per element, odometer over the index.
void NaiveCopy(const char* src, const std::vector<int64_t>& ss, char* dst, const std::vector<int64_t>& ds,
               const Shape& shape, size_t elem) {
  if (NumElements(shape) == 0) return;
  Shape idx(shape.size(), 0);
  for (;;) {
    int64_t so = 0, d_off = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      so += idx[d] * ss[d];
      d_off += idx[d] * ds[d];
    }
    std::memcpy(dst + d_off, src + so, elem);
    size_t d = shape.size();
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

std::string RandomBytes(size_t n, std::mt19937& rng) {
  std::string s(n, '\0');
  std::uniform_int_distribution<int> byte(0, 255);
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

TEST_CASE("CopyStridedBytes matches a naive element loop", "[array][strided_copy]") {
  std::mt19937 rng(2024);
  for (size_t elem : {size_t{1}, size_t{2}, size_t{4}, size_t{8}, size_t{3}, size_t{16}}) {
    for (int iter = 0; iter < 400; ++iter) {
      const int rank = std::uniform_int_distribution<int>(0, 5)(rng);
      Shape shape(static_cast<size_t>(rank));
      for (auto& e : shape) e = std::uniform_int_distribution<int64_t>(iter % 10 == 0 ? 0 : 1, 5)(rng);
      const Layout src_layout = RandomLayout(shape, elem, /*allow_broadcast=*/true, rng);
      const Layout dst_layout = RandomLayout(shape, elem, /*allow_broadcast=*/false, rng);
      const std::string src = RandomBytes(src_layout.span, rng);
      std::string got(dst_layout.span, kSentinel), want(dst_layout.span, kSentinel);
      CopyStridedBytes(src.data(), src_layout.strides.data(), got.data(), dst_layout.strides.data(), shape.data(),
                       rank, elem);
      NaiveCopy(src.data(), src_layout.strides, want.data(), dst_layout.strides, shape, elem);
      INFO("elem " << elem << " shape " << ShapeToString(shape) << " src strides "
                   << ShapeToString(src_layout.strides) << " dst strides " << ShapeToString(dst_layout.strides));
      REQUIRE(got == want);  // gaps in the destination are left alone
    }
  }
}

TEST_CASE("CopyStridedBytes with a zero-size axis copies nothing", "[array][strided_copy]") {
  for (const Shape& shape : std::vector<Shape>{{0}, {3, 0}, {0, 4}, {2, 0, 3}}) {
    std::vector<int64_t> strides(shape.size(), 4);
    const std::string src(64, 'x');
    std::string dst(64, kSentinel);
    // Pointers that must not be touched: a zero-size copy reads and writes nothing.
    CopyStridedBytes(src.data(), strides.data(), dst.data(), strides.data(), shape.data(),
                     static_cast<int>(shape.size()), 4);
    CHECK(dst == std::string(64, kSentinel));
  }
}

TEST_CASE("CopyStridedBytes of a 0-d array copies one element", "[array][strided_copy]") {
  for (size_t elem : {size_t{1}, size_t{2}, size_t{4}, size_t{8}}) {
    const std::string src = "ABCDEFGH";
    std::string dst(16, kSentinel);
    CopyStridedBytes(src.data(), nullptr, dst.data() + 4, nullptr, nullptr, 0, elem);
    CHECK(dst.substr(4, elem) == src.substr(0, elem));
    CHECK(dst.substr(0, 4) == std::string(4, kSentinel));
    CHECK(dst.substr(4 + elem) == std::string(12 - elem, kSentinel));
  }
}

TEST_CASE("CopyStridedBytes with all size-1 axes copies one element", "[array][strided_copy]") {
  const Shape shape = {1, 1, 1};
  const std::vector<int64_t> ss = {100, 50, 8}, ds = {7, 3, 1000};
  const std::string src = "12345678";
  std::string dst(8, kSentinel);
  CopyStridedBytes(src.data(), ss.data(), dst.data(), ds.data(), shape.data(), 3, 8);
  CHECK(dst == src);
}

TEST_CASE("CopyStridedBytes transposes", "[array][strided_copy]") {
  // A 3x4 int32 matrix copied into its transpose's storage.
  std::vector<int32_t> src(12), dst(12, -1);
  std::iota(src.begin(), src.end(), 0);
  const Shape shape = {3, 4};
  const std::vector<int64_t> ss = {16, 4}, ds = {4, 12};
  CopyStridedBytes(src.data(), ss.data(), dst.data(), ds.data(), shape.data(), 2, 4);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) CHECK(dst[j * 3 + i] == src[i * 4 + j]);
  }
}

TEST_CASE("PackView and UnpackView round trip strided views", "[array][strided_copy]") {
  // A 6x8 float32 matrix; the view is its column slice [1:5, 2:7].
  std::vector<float> matrix(48);
  std::iota(matrix.begin(), matrix.end(), 0.0f);
  const TensorView whole(matrix.data(), DType::kFloat32, {6, 8});
  const TensorView slice = whole.Slice(Box{{1, 2}, {4, 5}});
  REQUIRE_FALSE(slice.is_contiguous());

  std::vector<float> packed(20, -1.0f);
  PackView(slice, packed.data());
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 5; ++j) CHECK(packed[i * 5 + j] == matrix[(i + 1) * 8 + (j + 2)]);
  }

  std::vector<float> other(48, -1.0f);
  const TensorView other_slice = TensorView(other.data(), DType::kFloat32, {6, 8}).Slice(Box{{1, 2}, {4, 5}});
  UnpackView(packed.data(), other_slice);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 8; ++j) {
      const bool inside = i >= 1 && i < 5 && j >= 2 && j < 7;
      CHECK(other[i * 8 + j] == (inside ? matrix[i * 8 + j] : -1.0f));
    }
  }
}

TEST_CASE("CopyView between differently strided views", "[array][strided_copy]") {
  std::mt19937 rng(5);
  for (DType dtype : {DType::kUInt8, DType::kBFloat16, DType::kFloat32, DType::kFloat64}) {
    const size_t elem = DTypeSize(dtype);
    const Shape shape = {3, 4, 5};
    // Source: a [3, 4, 5] window of a [4, 6, 7] array; destination: transposed storage.
    std::string big = RandomBytes(4 * 6 * 7 * elem, rng);
    const TensorView src = TensorView(big.data(), dtype, {4, 6, 7}).Slice(Box{{1, 2, 1}, shape});
    std::string out(3 * 4 * 5 * elem, kSentinel);
    const TensorView dst(out.data(), dtype, shape, /*strides=*/{1, 3 * 5, 3});
    CopyView(src, dst);
    for (int64_t a = 0; a < 3; ++a) {
      for (int64_t b = 0; b < 4; ++b) {
        for (int64_t c = 0; c < 5; ++c) {
          const size_t s = static_cast<size_t>(((a + 1) * 6 * 7 + (b + 2) * 7 + (c + 1))) * elem;
          const size_t d = static_cast<size_t>(a * 1 + b * 15 + c * 3) * elem;
          REQUIRE(out.compare(d, elem, big, s, elem) == 0);
        }
      }
    }
  }
}

TEST_CASE("PackView of a 0-d view and of an empty view", "[array][strided_copy]") {
  double x = 2.5, y = 0;
  PackView(TensorView(&x, DType::kFloat64, {}), &y);
  CHECK(y == 2.5);

  std::vector<float> none;
  std::vector<float> buf(4, 7.0f);
  PackView(TensorView(none.data(), DType::kFloat32, {0, 3}), buf.data());
  CHECK(buf == std::vector<float>(4, 7.0f));
}

}  // namespace
}  // namespace dcp::array
