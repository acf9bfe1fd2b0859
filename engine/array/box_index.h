// Copyright (c) dcp authors.
//
// Indexes over sets of boxes inside one global array: exact-cover checking
// (every element covered exactly once: no hole, no overlap) and overlap
// queries (which chunks intersect a requested region).
//
// Both use a "cut grid": the distinct box boundaries along each axis split the
// array into cells, and every box is a union of whole cells. Layouts that
// people use (regular TP/PP grids, uneven 1-D splits, chunked shards) give
// about one cell per box, so building costs O(n log n) and a query costs
// O(cells it touches). When boxes are so irregular that the grid would hold
// far more cells than boxes, both fall back to a sweep along the axis with the
// most distinct boundaries. The cover check then decides by corner counting
// (O(n 2^d log n) for n boxes of rank d, whatever their layout) and sweeps
// only to say where an inexact cover goes wrong, with bounded work.
//
// Thread safety: a built BoxIndex is immutable; Query may run concurrently.

#ifndef DCP_ENGINE_ARRAY_BOX_INDEX_H_
#define DCP_ENGINE_ARRAY_BOX_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dcp/types.h"

namespace dcp::array {

// What is wrong with a set of boxes that should tile `bounds` exactly.
struct CoverProblem {
  // kInexact: the boxes do not tile `bounds`, but locating where would cost
  // more than the check is allowed (crafted layouts); uncovered_elements is
  // the element count of `bounds` minus that of the boxes (negative: excess).
  enum class Kind { kNone, kOverlap, kHole, kInexact };
  Kind kind = Kind::kNone;
  size_t first = 0;   // kOverlap: the two boxes (indices), first < second
  size_t second = 0;
  // kOverlap: their common region. kHole: a region no box covers (when the
  // grid was built; otherwise empty).
  Box region;
  int64_t uncovered_elements = 0;  // kHole: how many elements are uncovered

  bool ok() const { return kind == Kind::kNone; }
};

// Checks that `boxes` (each within `bounds`; empty boxes are ignored) cover
// every element of `bounds` exactly once.
CoverProblem CheckExactCover(const Shape& bounds, const std::vector<Box>& boxes);

// Overlap queries over disjoint boxes (e.g. the chunks of one tensor).
class BoxIndex {
 public:
  // `boxes` must outlive the index and be pairwise disjoint, each within
  // `bounds`; the index refers to them by position.
  BoxIndex(const Shape& bounds, const std::vector<Box>* boxes);

  // Appends to *out the positions of the boxes that share at least one
  // element with `query`, ascending.
  void Query(const Box& query, std::vector<size_t>* out) const;

 private:
  struct Grid;
  void BuildGrid();
  void BuildSweep();

  Shape bounds_;
  const std::vector<Box>* boxes_;
  // Grid mode.
  bool grid_ = false;
  std::vector<std::vector<int64_t>> cuts_;  // per axis, sorted boundaries
  std::vector<int64_t> cell_strides_;
  std::vector<int64_t> owner_;  // per cell: box position or -1
  // Sweep mode: positions sorted by origin along sweep_axis_, with the
  // running maximum end for early exit.
  int sweep_axis_ = 0;
  std::vector<size_t> order_;
  std::vector<int64_t> max_end_;
};

}  // namespace dcp::array

#endif  // DCP_ENGINE_ARRAY_BOX_INDEX_H_
