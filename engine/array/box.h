// Copyright (c) dcp authors.
//
// Box arithmetic over dcp::Box (origin + shape per axis, half-open): the
// region algebra every other module uses for shards, chunks and requests.
//
// All functions are pure. Boxes passed together must have the same rank;
// a 0-d box (no axes) holds one element and contains/intersects itself.

#ifndef DCP_ENGINE_ARRAY_BOX_H_
#define DCP_ENGINE_ARRAY_BOX_H_

#include <cstdint>

#include "dcp/types.h"

namespace dcp::array {

// A box at origin 0 with the given shape.
Box BoxOfShape(const Shape& shape);

// True if origin >= 0 and origin + shape <= bounds on every axis, and the
// ranks agree. Empty boxes may sit anywhere within [0, bounds].
bool IsWithin(const Box& box, const Shape& bounds);

// True if every element of `inner` is in `outer` (an empty inner box is
// contained if its origin lies within outer's closed range).
bool Contains(const Box& outer, const Box& inner);

// The intersection of a and b. Returns false (and leaves *out unspecified) if
// it holds no element.
bool Intersect(const Box& a, const Box& b, Box* out);

// `box` with `origin` subtracted (the same region in coordinates relative to
// `origin`). REQUIRES: same rank.
Box RelativeTo(const Box& box, const Shape& origin);

// Row-major offset (in elements) of `index` within an array of `shape`.
int64_t LinearOffset(const Shape& index, const Shape& shape);

}  // namespace dcp::array

#endif  // DCP_ENGINE_ARRAY_BOX_H_
