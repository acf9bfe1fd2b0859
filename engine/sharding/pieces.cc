// Copyright (c) dcp authors.

#include "engine/sharding/pieces.h"

#include <cstddef>

namespace dcp::sharding {
namespace {

// Appends the boxes of elements [begin, end) of the sub-array at `prefix`
// (indices fixed on the axes before prefix.size()) of an array of `shape`.
// REQUIRES: 0 <= begin <= end <= elements of that sub-array.
void Decompose(const Shape& shape, Shape* prefix, int64_t begin, int64_t end, std::vector<Box>* out) {
  if (begin == end) return;
  const size_t axis = prefix->size();
  if (axis == shape.size()) {  // a single element (0-d, or the innermost index fixed)
    out->push_back(Box{*prefix, Shape(axis, 1)});
    return;
  }
  int64_t inner = 1;  // elements of one index along `axis`
  for (size_t a = axis + 1; a < shape.size(); ++a) inner *= shape[a];
  auto slab = [&](int64_t from, int64_t count) {
    Box b;
    b.origin = *prefix;
    b.origin.push_back(from);
    b.origin.resize(shape.size(), 0);
    b.shape.assign(axis, 1);
    b.shape.push_back(count);
    b.shape.insert(b.shape.end(), shape.begin() + static_cast<std::ptrdiff_t>(axis) + 1, shape.end());
    out->push_back(std::move(b));
  };
  auto recurse = [&](int64_t index, int64_t b, int64_t e) {
    prefix->push_back(index);
    Decompose(shape, prefix, b, e, out);
    prefix->pop_back();
  };
  const int64_t first_whole = (begin + inner - 1) / inner;  // indices [first_whole, last_whole) are whole
  const int64_t last_whole = end / inner;
  if (first_whole > last_whole) {  // begin and end fall within one index
    const int64_t i = begin / inner;
    recurse(i, begin - i * inner, end - i * inner);
    return;
  }
  if (begin % inner != 0) recurse(begin / inner, begin % inner, inner);
  if (last_whole > first_whole) slab(first_whole, last_whole - first_whole);
  if (end % inner != 0) recurse(last_whole, 0, end % inner);
}

// `data` (1-D, stride s) elements [from, from + NumElements(shape)) seen as a
// row-major array of `shape`.
TensorView Reshape(const TensorView& flat, int64_t from, const Shape& shape) {
  const int64_t s = flat.strides().empty() ? 1 : flat.strides()[0];
  Shape strides = ContiguousStrides(shape);
  for (int64_t& x : strides) x *= s;
  const char* base = static_cast<const char*>(flat.data()) + from * s * static_cast<int64_t>(DTypeSize(flat.dtype()));
  return TensorView(base, flat.dtype(), shape, std::move(strides), flat.device());
}

}  // namespace

std::vector<Box> FlatRangeBoxes(const Shape& shape, int64_t begin, int64_t end) {
  std::vector<Box> boxes;
  Shape prefix;
  prefix.reserve(shape.size());
  Decompose(shape, &prefix, begin, end, &boxes);
  return boxes;
}

std::vector<Piece> PiecesOf(const ShardedTensor& t) {
  std::vector<Piece> pieces;
  const Box box = t.global_box();
  const size_t lead = box.shape.size() - t.local_shape.size();  // prepended axes
  if (!t.flattened_range) {
    if (box.num_elements() == 0) return pieces;
    Shape strides(lead, 0);
    strides.insert(strides.end(), t.data.strides().begin(), t.data.strides().end());
    pieces.push_back({box, TensorView(t.data.data(), t.data.dtype(), box.shape, std::move(strides), t.data.device())});
    return pieces;
  }
  const FlatRange r = *t.flattened_range;
  int64_t from = 0;  // position in the flat data
  for (Box& local : FlatRangeBoxes(t.local_shape, r.begin, r.end)) {
    Piece p;
    p.box.origin = box.origin;
    for (size_t a = 0; a < local.origin.size(); ++a) p.box.origin[lead + a] += local.origin[a];
    p.box.shape.assign(lead, 1);
    p.box.shape.insert(p.box.shape.end(), local.shape.begin(), local.shape.end());
    p.data = Reshape(t.data, from, p.box.shape);
    from += local.num_elements();
    pieces.push_back(std::move(p));
  }
  return pieces;
}

}  // namespace dcp::sharding
