// Copyright (c) dcp authors.

#include "engine/array/box.h"

#include <algorithm>

namespace dcp::array {

Box BoxOfShape(const Shape& shape) { return Box{Shape(shape.size(), 0), shape}; }

bool IsWithin(const Box& box, const Shape& bounds) {
  if (box.origin.size() != bounds.size() || box.shape.size() != bounds.size()) return false;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (box.origin[i] < 0 || box.shape[i] < 0) return false;
    if (box.origin[i] > bounds[i] || box.shape[i] > bounds[i] - box.origin[i]) return false;
  }
  return true;
}

bool Contains(const Box& outer, const Box& inner) {
  if (outer.rank() != inner.rank()) return false;
  // An empty box holds no element, so only its origin has to lie inside.
  const bool empty = inner.num_elements() == 0;
  for (int i = 0; i < outer.rank(); ++i) {
    if (inner.origin[i] < outer.origin[i]) return false;
    const int64_t end = empty ? inner.origin[i] : inner.origin[i] + inner.shape[i];
    if (end > outer.origin[i] + outer.shape[i]) return false;
  }
  return true;
}

bool Intersect(const Box& a, const Box& b, Box* out) {
  if (a.rank() != b.rank()) return false;
  out->origin.resize(a.shape.size());
  out->shape.resize(a.shape.size());
  for (int i = 0; i < a.rank(); ++i) {
    const int64_t lo = std::max(a.origin[i], b.origin[i]);
    const int64_t hi = std::min(a.origin[i] + a.shape[i], b.origin[i] + b.shape[i]);
    if (hi <= lo) return false;
    out->origin[i] = lo;
    out->shape[i] = hi - lo;
  }
  return true;
}

Box RelativeTo(const Box& box, const Shape& origin) {
  Box r = box;
  for (size_t i = 0; i < r.origin.size(); ++i) r.origin[i] -= origin[i];
  return r;
}

int64_t LinearOffset(const Shape& index, const Shape& shape) {
  int64_t off = 0;
  for (size_t i = 0; i < shape.size(); ++i) off = off * shape[i] + index[i];
  return off;
}

}  // namespace dcp::array
