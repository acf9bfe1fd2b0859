// Copyright (c) dcp authors.
//
// Pieces: a shard seen as ordinary boxes, each with the view of exactly its
// elements. Everything past validation (the writer, the load planner) works
// on pieces, so flattened ranges need no path of their own.
//
// A non-flat shard is one piece: its global box and its data. A flat shard
// (distributed-optimizer slice, ShardedTensor::flattened_range) holds the
// elements [begin, end) of the row-major flattening of its local box; that
// range is a union of at most 2*rank-1 boxes, each contiguous in the flat
// order: a partial run of the innermost axis, then full slabs of growing
// size, the largest slab in the middle, then shrinking slabs and a partial
// trailing run. The data of each such box is a contiguous stretch of the flat
// view, reshaped to the box.
//
// Thread safety: pure functions. Views point into the shard's data, whose
// lifetime is the caller's.

#ifndef DCP_ENGINE_SHARDING_PIECES_H_
#define DCP_ENGINE_SHARDING_PIECES_H_

#include <cstdint>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp::sharding {

struct Piece {
  Box box;          // global coordinates, prepended axes included
  TensorView data;  // the elements of `box`, shaped box.shape (full rank)
};

// The boxes (relative to an array of `shape`) whose union is the elements
// [begin, end) of the array's row-major flattening, in flat order, each
// contiguous in it: at most 2*rank-1 boxes (one for a 0-d array), none for an
// empty range, one when the range is the whole array.
// REQUIRES: 0 <= begin <= end <= NumElements(shape).
std::vector<Box> FlatRangeBoxes(const Shape& shape, int64_t begin, int64_t end);

// The pieces of `t`, in flat order; none if it holds no element.
// REQUIRES: t passes ValidateTensorLeaf (data agrees with the declaration).
std::vector<Piece> PiecesOf(const ShardedTensor& t);

}  // namespace dcp::sharding

#endif  // DCP_ENGINE_SHARDING_PIECES_H_
