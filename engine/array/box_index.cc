// Copyright (c) dcp authors.

#include "engine/array/box_index.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include "engine/array/box.h"

namespace dcp::array {
namespace {

// Grids with more cells than this many per box (plus a constant) are not built.
constexpr int64_t kMaxCellsPerBox = 8;
constexpr int64_t kMaxCellsSlack = 4096;
// Corner counting holds 2^rank corners per box (rank + 1 words each).
constexpr size_t kMaxCorners = size_t{1} << 23;
// Work of the sweep that locates what is wrong with an inexact cover.
// (Layouts people use stay far below it; a crafted one costs at most ~3,000
// box tests per box over a whole manifest.)
constexpr int64_t kSweepWorkPerBox = 2048;
constexpr int64_t kSweepWorkSlack = int64_t{1} << 20;

bool NonEmpty(const Box& b) { return b.num_elements() > 0; }

// Boundaries along each axis; false if the grid would be too large.
bool BuildCuts(const Shape& bounds, const std::vector<Box>& boxes, std::vector<std::vector<int64_t>>* cuts,
               std::vector<int64_t>* strides, int64_t* cells) {
  const size_t rank = bounds.size();
  cuts->assign(rank, {});
  int64_t nonempty = 0;
  for (size_t d = 0; d < rank; ++d) (*cuts)[d] = {0, bounds[d]};
  for (const Box& b : boxes) {
    if (!NonEmpty(b)) continue;
    ++nonempty;
    for (size_t d = 0; d < rank; ++d) {
      (*cuts)[d].push_back(b.origin[d]);
      (*cuts)[d].push_back(b.origin[d] + b.shape[d]);
    }
  }
  const int64_t limit = kMaxCellsPerBox * nonempty + kMaxCellsSlack;
  int64_t total = 1;
  for (size_t d = 0; d < rank; ++d) {
    auto& c = (*cuts)[d];
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
    const int64_t n = static_cast<int64_t>(c.size()) - 1;
    if (n <= 0) {  // zero-extent axis: no cells at all
      total = 0;
      continue;
    }
    if (total > limit / n) return false;
    total *= n;
  }
  strides->assign(rank, 1);
  for (size_t d = rank; d-- > 1;) (*strides)[d - 1] = (*strides)[d] * (static_cast<int64_t>((*cuts)[d].size()) - 1);
  *cells = total;
  return true;
}

// Cell index range [lo, hi) per axis of the cells that intersect `b`.
void CellRange(const std::vector<std::vector<int64_t>>& cuts, const Box& b, std::vector<int64_t>* lo,
               std::vector<int64_t>* hi) {
  const size_t rank = cuts.size();
  lo->resize(rank);
  hi->resize(rank);
  for (size_t d = 0; d < rank; ++d) {
    const auto& c = cuts[d];
    const int64_t ncells = static_cast<int64_t>(c.size()) - 1;
    const int64_t q_lo = b.origin[d], q_hi = b.origin[d] + b.shape[d];
    int64_t l = static_cast<int64_t>(std::upper_bound(c.begin(), c.end(), q_lo) - c.begin()) - 1;
    int64_t h = static_cast<int64_t>(std::lower_bound(c.begin(), c.end(), q_hi) - c.begin());
    (*lo)[d] = std::max<int64_t>(l, 0);
    (*hi)[d] = std::min<int64_t>(h, ncells);
  }
}

// Calls f(linear cell index, per-axis cell index) for every cell in [lo, hi).
template <typename F>
void ForEachCell(const std::vector<int64_t>& lo, const std::vector<int64_t>& hi, const std::vector<int64_t>& strides,
                 F f) {
  const size_t rank = lo.size();
  for (size_t d = 0; d < rank; ++d) {
    if (lo[d] >= hi[d]) return;
  }
  std::vector<int64_t> idx = lo;
  for (;;) {
    int64_t linear = 0;
    for (size_t d = 0; d < rank; ++d) linear += idx[d] * strides[d];
    f(linear, idx);
    size_t d = rank;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] < hi[d]) break;
      idx[d] = lo[d];
    }
  }
}

Box CellBox(const std::vector<std::vector<int64_t>>& cuts, const std::vector<int64_t>& idx) {
  Box b;
  for (size_t d = 0; d < cuts.size(); ++d) {
    b.origin.push_back(cuts[d][idx[d]]);
    b.shape.push_back(cuts[d][idx[d] + 1] - cuts[d][idx[d]]);
  }
  return b;
}

// Axis with the most distinct box origins (the best one to sweep along).
int SweepAxis(const std::vector<Box>& boxes, size_t rank) {
  int best = 0;
  size_t best_count = 0;
  for (size_t d = 0; d < rank; ++d) {
    std::vector<int64_t> starts;
    for (const Box& b : boxes) {
      if (NonEmpty(b)) starts.push_back(b.origin[d]);
    }
    std::sort(starts.begin(), starts.end());
    const size_t count = static_cast<size_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
    if (count > best_count) {
      best_count = count;
      best = static_cast<int>(d);
    }
  }
  return best;
}

// Corner counting. The sum f of the boxes' indicator functions is 1 on
// `bounds` and 0 elsewhere exactly when their signed corners cancel down to
// those of `bounds`: the d-fold finite difference of the indicator of [a, b)
// is +1 or -1 at its 2^d corners (sign: -1 per upper coordinate) and 0
// elsewhere, differencing is linear, and a function of finite support is
// determined by its difference (sum it back up). So: collect every corner
// with its sign, subtract the corners of `bounds`, and check that each point's
// signs sum to zero. nullopt when the corners would be too many to hold.
// REQUIRES: every box lies within `bounds`.
std::optional<bool> CornersTile(const Shape& bounds, const std::vector<Box>& boxes, size_t nonempty) {
  const size_t rank = bounds.size();
  if (rank >= 32) return std::nullopt;
  const size_t per_box = size_t{1} << rank;
  if (nonempty + 1 > kMaxCorners / per_box) return std::nullopt;
  const size_t n = (nonempty + 1) * per_box;
  std::vector<int64_t> coords;
  coords.reserve(n * rank);
  std::vector<int8_t> sign;
  sign.reserve(n);
  auto add = [&](const Shape& origin, const Shape& shape, int8_t s0) {
    for (size_t mask = 0; mask < per_box; ++mask) {
      int8_t s = s0;
      for (size_t d = 0; d < rank; ++d) {
        const bool upper = (mask >> d) & 1;
        coords.push_back(upper ? origin[d] + shape[d] : origin[d]);
        if (upper) s = static_cast<int8_t>(-s);
      }
      sign.push_back(s);
    }
  };
  for (const Box& b : boxes) {
    if (NonEmpty(b)) add(b.origin, b.shape, 1);
  }
  add(Shape(rank, 0), bounds, -1);
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  auto point = [&](uint32_t i) { return coords.data() + static_cast<size_t>(i) * rank; };
  auto less = [&](uint32_t a, uint32_t b) {
    return std::lexicographical_compare(point(a), point(a) + rank, point(b), point(b) + rank);
  };
  std::sort(idx.begin(), idx.end(), less);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    int64_t sum = 0;
    while (j < n && std::equal(point(idx[i]), point(idx[i]) + rank, point(idx[j]))) sum += sign[idx[j++]];
    if (sum != 0) return false;
    i = j;
  }
  return true;
}

CoverProblem Overlap(const std::vector<Box>& boxes, size_t a, size_t b) {
  CoverProblem p;
  p.kind = CoverProblem::Kind::kOverlap;
  p.first = std::min(a, b);
  p.second = std::max(a, b);
  Intersect(boxes[a], boxes[b], &p.region);
  return p;
}

}  // namespace

CoverProblem CheckExactCover(const Shape& bounds, const std::vector<Box>& boxes) {
  const int64_t total = NumElements(bounds);
  if (bounds.empty()) {  // 0-d: exactly one non-empty box
    std::vector<size_t> holders;
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (NonEmpty(boxes[i])) holders.push_back(i);
    }
    if (holders.size() >= 2) return Overlap(boxes, holders[0], holders[1]);
    if (holders.empty()) {
      CoverProblem p;
      p.kind = CoverProblem::Kind::kHole;
      p.uncovered_elements = 1;
      return p;
    }
    return {};
  }
  std::vector<std::vector<int64_t>> cuts;
  std::vector<int64_t> strides;
  int64_t cells = 0;
  if (BuildCuts(bounds, boxes, &cuts, &strides, &cells)) {
    std::vector<int64_t> owner(static_cast<size_t>(cells), -1);
    std::vector<int64_t> lo, hi;
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (!NonEmpty(boxes[i])) continue;
      CellRange(cuts, boxes[i], &lo, &hi);
      int64_t clash = -1;
      ForEachCell(lo, hi, strides, [&](int64_t cell, const std::vector<int64_t>&) {
        if (clash >= 0) return;
        if (owner[cell] >= 0) clash = owner[cell];
        else owner[cell] = static_cast<int64_t>(i);
      });
      if (clash >= 0) return Overlap(boxes, static_cast<size_t>(clash), i);
    }
    CoverProblem p;
    std::vector<int64_t> all_lo(cuts.size(), 0), all_hi(cuts.size());
    for (size_t d = 0; d < cuts.size(); ++d) all_hi[d] = static_cast<int64_t>(cuts[d].size()) - 1;
    ForEachCell(all_lo, all_hi, strides, [&](int64_t cell, const std::vector<int64_t>& idx) {
      if (owner[cell] >= 0) return;
      const Box b = CellBox(cuts, idx);
      if (p.kind == CoverProblem::Kind::kNone) {
        p.kind = CoverProblem::Kind::kHole;
        p.region = b;
      }
      p.uncovered_elements += b.num_elements();
    });
    return p;
  }
  // Too irregular for a grid. Corner counting decides exactness in
  // O(n 2^d log n) whatever the layout; only an inexact set is then searched
  // for where it goes wrong, by a sweep whose work is bounded.
  size_t nonempty = 0;
  for (const Box& b : boxes) nonempty += NonEmpty(b) ? 1 : 0;
  const std::optional<bool> corners = CornersTile(bounds, boxes, nonempty);
  if (corners == true) return {};
  // Sweep: overlaps among boxes whose ranges meet along the sweep axis.
  const int axis = SweepAxis(boxes, bounds.size());
  std::vector<size_t> order;
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (NonEmpty(boxes[i])) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return boxes[a].origin[axis] < boxes[b].origin[axis]; });
  // Crafted layouts can keep most boxes active at once (quadratic work): once
  // the corners have shown the cover inexact, the sweep only locates the
  // problem, within a budget. (Without the corners' verdict it must finish.)
  int64_t budget = corners == false ? kSweepWorkPerBox * static_cast<int64_t>(order.size()) + kSweepWorkSlack
                                    : INT64_MAX;
  std::vector<size_t> active;
  int64_t covered = 0;
  bool located = true;
  for (size_t i : order) {
    const int64_t start = boxes[i].origin[axis];
    budget -= static_cast<int64_t>(active.size());
    if (budget < 0) {
      located = false;
      break;
    }
    // One pass: drop the boxes the sweep has left behind, test the others.
    size_t kept = 0;
    Box common;
    for (size_t a : active) {
      if (boxes[a].origin[axis] + boxes[a].shape[axis] <= start) continue;
      if (Intersect(boxes[a], boxes[i], &common)) return Overlap(boxes, a, i);
      active[kept++] = a;
    }
    active.resize(kept);
    active.push_back(i);
    covered += boxes[i].num_elements();
  }
  CoverProblem p;
  if (!located) {
    p.kind = CoverProblem::Kind::kInexact;
    __int128 sum = 0;
    for (size_t i : order) sum += boxes[i].num_elements();
    const __int128 diff = static_cast<__int128>(total) - sum;
    p.uncovered_elements = static_cast<int64_t>(std::clamp<__int128>(diff, INT64_MIN, INT64_MAX));
    return p;
  }
  if (covered != total) {
    p.kind = CoverProblem::Kind::kHole;
    p.uncovered_elements = total - covered;
  }
  return p;
}

BoxIndex::BoxIndex(const Shape& bounds, const std::vector<Box>* boxes) : bounds_(bounds), boxes_(boxes) {
  BuildGrid();
  if (!grid_) BuildSweep();
}

void BoxIndex::BuildGrid() {
  int64_t cells = 0;
  if (bounds_.empty() || !BuildCuts(bounds_, *boxes_, &cuts_, &cell_strides_, &cells)) return;
  owner_.assign(static_cast<size_t>(cells), -1);
  std::vector<int64_t> lo, hi;
  for (size_t i = 0; i < boxes_->size(); ++i) {
    const Box& b = (*boxes_)[i];
    if (!NonEmpty(b)) continue;
    CellRange(cuts_, b, &lo, &hi);
    ForEachCell(lo, hi, cell_strides_, [&](int64_t cell, const std::vector<int64_t>&) {
      owner_[cell] = static_cast<int64_t>(i);
    });
  }
  grid_ = true;
}

void BoxIndex::BuildSweep() {
  const size_t rank = bounds_.size();
  for (size_t i = 0; i < boxes_->size(); ++i) {
    if (NonEmpty((*boxes_)[i])) order_.push_back(i);
  }
  if (rank == 0) return;
  sweep_axis_ = SweepAxis(*boxes_, rank);
  const int a = sweep_axis_;
  std::sort(order_.begin(), order_.end(),
            [&](size_t x, size_t y) { return (*boxes_)[x].origin[a] < (*boxes_)[y].origin[a]; });
  max_end_.resize(order_.size());
  int64_t m = INT64_MIN;
  for (size_t k = 0; k < order_.size(); ++k) {
    const Box& b = (*boxes_)[order_[k]];
    m = std::max(m, b.origin[a] + b.shape[a]);
    max_end_[k] = m;
  }
}

void BoxIndex::Query(const Box& query, std::vector<size_t>* out) const {
  if (!NonEmpty(query) && !query.shape.empty()) return;
  const size_t first = out->size();
  if (grid_) {
    std::vector<int64_t> lo, hi;
    CellRange(cuts_, query, &lo, &hi);
    ForEachCell(lo, hi, cell_strides_, [&](int64_t cell, const std::vector<int64_t>&) {
      if (owner_[cell] >= 0) out->push_back(static_cast<size_t>(owner_[cell]));
    });
  } else if (bounds_.empty()) {
    out->insert(out->end(), order_.begin(), order_.end());
  } else {
    const int a = sweep_axis_;
    const int64_t q_lo = query.origin[a], q_hi = query.origin[a] + query.shape[a];
    size_t p = static_cast<size_t>(
        std::partition_point(order_.begin(), order_.end(), [&](size_t i) { return (*boxes_)[i].origin[a] < q_hi; }) -
        order_.begin());
    Box common;
    while (p-- > 0) {
      if (max_end_[p] <= q_lo) break;
      if (Intersect((*boxes_)[order_[p]], query, &common)) out->push_back(order_[p]);
    }
  }
  std::sort(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
  out->erase(std::unique(out->begin() + static_cast<std::ptrdiff_t>(first), out->end()), out->end());
}

}  // namespace dcp::array
