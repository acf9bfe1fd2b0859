// Copyright (c) dcp authors.
// Tests of engine/sharding/pieces.cc: shards, flat or not, as ordinary boxes.

#include "engine/sharding/pieces.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "dcp/types.h"
#include "engine/array/box.h"

namespace dcp::sharding {
namespace {

Box B(Shape origin, Shape shape) { return Box{std::move(origin), std::move(shape)}; }

// The row-major offsets (within an array of `shape`) of the elements of
// `box`, in the box's own row-major order.
void AppendOffsets(const Box& box, const Shape& shape, std::vector<int64_t>* out) {
  const int64_t n = box.num_elements();
  Shape idx(box.shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    Shape at = box.origin;
    for (size_t a = 0; a < at.size(); ++a) at[a] += idx[a];
    out->push_back(array::LinearOffset(at, shape));
    for (size_t a = idx.size(); a-- > 0;) {
      if (++idx[a] < box.shape[a]) break;
      idx[a] = 0;
    }
  }
}

// Every promise of FlatRangeBoxes for one range.
void CheckRange(const Shape& shape, int64_t begin, int64_t end) {
  INFO("shape " << ShapeToString(shape) << " range [" << begin << ", " << end << ")");
  const std::vector<Box> boxes = FlatRangeBoxes(shape, begin, end);
  if (begin == end) {
    CHECK(boxes.empty());
    return;
  }
  const size_t limit = shape.empty() ? 1 : 2 * shape.size() - 1;
  CHECK(boxes.size() <= limit);
  std::vector<int64_t> offsets;
  for (const Box& b : boxes) {
    REQUIRE(array::IsWithin(b, shape));
    REQUIRE(b.num_elements() > 0);
    AppendOffsets(b, shape, &offsets);
  }
  // In flat order, each box contiguous, together exactly [begin, end).
  REQUIRE(static_cast<int64_t>(offsets.size()) == end - begin);
  for (size_t i = 0; i < offsets.size(); ++i) REQUIRE(offsets[i] == begin + static_cast<int64_t>(i));
  if (begin == 0 && end == NumElements(shape)) CHECK(boxes == std::vector<Box>{array::BoxOfShape(shape)});
}

TEST_CASE("FlatRangeBoxes: partial runs and slabs", "[sharding][pieces]") {
  // A (3, 4, 5) box, elements [7, 53): rest of row (0,1), rows (0,2..3),
  // the whole plane 1, rows (2,0..1), the start of row (2,2).
  CHECK(FlatRangeBoxes({3, 4, 5}, 7, 53) ==
        std::vector<Box>{B({0, 1, 2}, {1, 1, 3}), B({0, 2, 0}, {1, 2, 5}), B({1, 0, 0}, {1, 4, 5}),
                         B({2, 0, 0}, {1, 2, 5}), B({2, 2, 0}, {1, 1, 3})});
  CHECK(FlatRangeBoxes({3, 4, 5}, 0, 60) == std::vector<Box>{B({0, 0, 0}, {3, 4, 5})});
  CHECK(FlatRangeBoxes({3, 4, 5}, 20, 40) == std::vector<Box>{B({1, 0, 0}, {1, 4, 5})});
  CHECK(FlatRangeBoxes({3, 4, 5}, 21, 23) == std::vector<Box>{B({1, 0, 1}, {1, 1, 2})});
  CHECK(FlatRangeBoxes({10}, 3, 8) == std::vector<Box>{B({3}, {5})});
  CHECK(FlatRangeBoxes({}, 0, 1) == std::vector<Box>{B({}, {})});
  CHECK(FlatRangeBoxes({}, 1, 1).empty());
  CHECK(FlatRangeBoxes({4, 0, 3}, 0, 0).empty());
}

TEST_CASE("FlatRangeBoxes: every range of small shapes", "[sharding][pieces]") {
  for (const Shape& shape : std::vector<Shape>{{}, {1}, {7}, {2, 3}, {3, 1, 4}, {2, 3, 2, 3}, {1, 1, 5}, {4, 1}}) {
    const int64_t n = NumElements(shape);
    for (int64_t b = 0; b <= n; ++b) {
      for (int64_t e = b; e <= n; ++e) CheckRange(shape, b, e);
    }
  }
}

TEST_CASE("FlatRangeBoxes: random larger shapes", "[sharding][pieces]") {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    Shape shape(rng() % 6);
    for (int64_t& d : shape) d = 1 + static_cast<int64_t>(rng() % 6);
    const int64_t n = NumElements(shape);
    int64_t b = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    int64_t e = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    if (b > e) std::swap(b, e);
    CheckRange(shape, b, e);
  }
}

// A flat shard whose element i of the flat range holds begin + i (its offset
// in the local box); each piece must then hold, at every position, the local
// box offset of that position.
void CheckPieces(const Shape& local_shape, FlatRange r, int64_t stride, int prepend) {
  INFO("local " << ShapeToString(local_shape) << " range [" << r.begin << ", " << r.end << ") stride " << stride
                << " prepend " << prepend);
  std::vector<int64_t> storage(static_cast<size_t>(std::max<int64_t>(1, r.size() * stride)), -1);
  for (int64_t i = 0; i < r.size(); ++i) storage[static_cast<size_t>(i * stride)] = r.begin + i;
  ShardedTensor t;
  t.key = "w";
  t.dtype = DType::kInt64;
  t.local_shape = local_shape;
  t.prepend_axis_num = prepend;
  t.global_offset.assign(static_cast<size_t>(prepend), 2);
  t.global_shape.assign(static_cast<size_t>(prepend), 5);
  for (int64_t d : local_shape) {
    t.global_offset.push_back(3);
    t.global_shape.push_back(d + 6);
  }
  t.data = TensorView(storage.data(), DType::kInt64, {r.size()}, {stride});
  t.flattened_range = r;
  const std::vector<Piece> pieces = PiecesOf(t);
  int64_t seen = 0;
  const size_t lead = static_cast<size_t>(prepend);
  for (const Piece& p : pieces) {
    REQUIRE(p.data.shape() == p.box.shape);
    REQUIRE(array::Contains(t.global_box(), p.box));
    for (size_t a = 0; a < lead; ++a) CHECK(p.box.shape[a] == 1);
    const Box local{Shape(p.box.origin.begin() + lead, p.box.origin.end()),
                    Shape(p.box.shape.begin() + lead, p.box.shape.end())};
    Box rel = array::RelativeTo(local, Shape(t.global_offset.begin() + lead, t.global_offset.end()));
    std::vector<int64_t> offsets;
    AppendOffsets(rel, local_shape, &offsets);
    // Walk the piece's view in row-major order.
    const auto* base = static_cast<const int64_t*>(p.data.data());
    Shape idx(p.box.shape.size(), 0);
    for (int64_t expected : offsets) {
      int64_t at = 0;
      for (size_t a = 0; a < idx.size(); ++a) at += idx[a] * p.data.strides()[a];
      REQUIRE(base[at] == expected);
      for (size_t a = idx.size(); a-- > 0;) {
        if (++idx[a] < p.box.shape[a]) break;
        idx[a] = 0;
      }
    }
    seen += p.box.num_elements();
  }
  CHECK(seen == r.size());
}

TEST_CASE("PiecesOf: flat shards become boxes with views into the flat data", "[sharding][pieces]") {
  CheckPieces({3, 4, 5}, {7, 53}, 1, 0);
  CheckPieces({3, 4, 5}, {7, 53}, 3, 1);
  CheckPieces({6}, {1, 5}, 2, 2);
  CheckPieces({}, {0, 1}, 1, 1);
  CheckPieces({2, 3}, {0, 6}, 1, 0);
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 100; ++iter) {
    Shape shape(rng() % 4);
    for (int64_t& d : shape) d = 1 + static_cast<int64_t>(rng() % 5);
    const int64_t n = NumElements(shape);
    int64_t b = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    int64_t e = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    if (b > e) std::swap(b, e);
    CheckPieces(shape, {b, e}, 1 + static_cast<int64_t>(rng() % 2), static_cast<int>(rng() % 2));
  }
}

TEST_CASE("PiecesOf: empty flat range and non-flat shards", "[sharding][pieces]") {
  alignas(8) static float data[24];
  ShardedTensor t;
  t.key = "w";
  t.local_shape = {4, 6};
  t.global_shape = {8, 6};
  t.global_offset = {4, 0};
  t.data = TensorView(data, DType::kFloat32, {0});
  t.flattened_range = FlatRange{9, 9};
  CHECK(PiecesOf(t).empty());

  // Non-flat: one piece, the whole box, the same memory (prepended axes added).
  t.flattened_range.reset();
  t.data = TensorView(data, DType::kFloat32, {4, 6});
  std::vector<Piece> p = PiecesOf(t);
  REQUIRE(p.size() == 1);
  CHECK(p[0].box == B({4, 0}, {4, 6}));
  CHECK(p[0].data.data() == data);
  CHECK(p[0].data.strides() == Shape{6, 1});

  t.prepend_axis_num = 1;
  t.global_shape = {3, 8, 6};
  t.global_offset = {2, 4, 0};
  p = PiecesOf(t);
  REQUIRE(p.size() == 1);
  CHECK(p[0].box == B({2, 4, 0}, {1, 4, 6}));
  CHECK(p[0].data.shape() == Shape{1, 4, 6});

  t.local_shape = {0, 6};
  t.data = TensorView(data, DType::kFloat32, {0, 6});
  CHECK(PiecesOf(t).empty());
}

}  // namespace
}  // namespace dcp::sharding
