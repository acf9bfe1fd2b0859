// Copyright (c) dcp authors.
// Tests of engine/array/box_index.cc: exact-cover checks and overlap queries, in both
// the cut-grid mode and the sweep fallback, against brute force.

#include "engine/array/box_index.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "dcp/types.h"
#include "engine/array/box.h"

namespace dcp::array {
namespace {

using Kind = CoverProblem::Kind;

Box B(Shape origin, Shape shape) { return Box{std::move(origin), std::move(shape)}; }

// The grid budget of box_index.cc: a layout whose cut grid holds more cells than
// this is checked by the sweep instead. Tests use it to prove a layout takes
// the sweep path.
int64_t GridCells(const Shape& bounds, const std::vector<Box>& boxes) {
  int64_t cells = 1;
  for (size_t d = 0; d < bounds.size(); ++d) {
    std::set<int64_t> cuts = {0, bounds[d]};
    for (const Box& b : boxes) {
      if (b.num_elements() == 0) continue;
      cuts.insert(b.origin[d]);
      cuts.insert(b.origin[d] + b.shape[d]);
    }
    cells *= static_cast<int64_t>(cuts.size()) - 1;
  }
  return cells;
}
int64_t GridBudget(const std::vector<Box>& boxes) {
  int64_t nonempty = 0;
  for (const Box& b : boxes) nonempty += b.num_elements() > 0 ? 1 : 0;
  return 8 * nonempty + 4096;
}

// Splits `box` into disjoint boxes that tile it (random guillotine cuts).
void Partition(const Box& box, std::mt19937& rng, int64_t max_elems, std::vector<Box>* out) {
  if (box.num_elements() <= max_elems || std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
    out->push_back(box);
    return;
  }
  std::vector<int> axes;
  for (int d = 0; d < box.rank(); ++d) {
    if (box.shape[d] >= 2) axes.push_back(d);
  }
  if (axes.empty()) {
    out->push_back(box);
    return;
  }
  const int d = axes[std::uniform_int_distribution<size_t>(0, axes.size() - 1)(rng)];
  const int64_t cut = std::uniform_int_distribution<int64_t>(1, box.shape[d] - 1)(rng);
  Box lo = box, hi = box;
  lo.shape[d] = cut;
  hi.origin[d] += cut;
  hi.shape[d] -= cut;
  Partition(lo, rng, max_elems, out);
  Partition(hi, rng, max_elems, out);
}

// Rows of height 1, each cut at `cuts_per_row` random columns: thousands of thin
// boxes whose boundaries are all different, so the cut grid is ~rows * columns.
std::vector<Box> StaggeredRows(int64_t rows, int64_t width, int cuts_per_row, std::mt19937& rng) {
  std::vector<Box> boxes;
  std::uniform_int_distribution<int64_t> col(1, width - 1);
  for (int64_t r = 0; r < rows; ++r) {
    std::set<int64_t> cuts = {0, width};
    while (static_cast<int>(cuts.size()) < cuts_per_row + 2) cuts.insert(col(rng));
    for (auto it = cuts.begin(); std::next(it) != cuts.end(); ++it) {
      boxes.push_back(B({r, *it}, {1, *std::next(it) - *it}));
    }
  }
  return boxes;
}

// Brute force: the pairs of boxes sharing an element, and the uncovered count.
std::set<std::pair<size_t, size_t>> OverlappingPairs(const std::vector<Box>& boxes) {
  std::set<std::pair<size_t, size_t>> pairs;
  Box common;
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (size_t j = i + 1; j < boxes.size(); ++j) {
      if (Intersect(boxes[i], boxes[j], &common)) pairs.insert({i, j});
    }
  }
  return pairs;
}

// Checks `p` against brute force.
void CheckAgainstBruteForce(const Shape& bounds, const std::vector<Box>& boxes, const CoverProblem& p) {
  const auto pairs = OverlappingPairs(boxes);
  if (!pairs.empty()) {
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first < p.second);
    CHECK(pairs.count({p.first, p.second}) == 1);
    Box common;
    REQUIRE(Intersect(boxes[p.first], boxes[p.second], &common));
    CHECK(p.region == common);
    return;
  }
  int64_t covered = 0;
  for (const Box& b : boxes) covered += b.num_elements();
  const int64_t uncovered = NumElements(bounds) - covered;
  if (uncovered == 0) {
    CHECK(p.ok());
    return;
  }
  REQUIRE(p.kind == Kind::kHole);
  CHECK(p.uncovered_elements == uncovered);
  if (!p.region.shape.empty()) {  // a reported hole region is non-empty and uncovered
    CHECK(p.region.num_elements() > 0);
    CHECK(IsWithin(p.region, bounds));
    Box common;
    for (const Box& b : boxes) CHECK_FALSE(Intersect(b, p.region, &common));
  }
}

TEST_CASE("CheckExactCover accepts exact regular grids", "[array][box_index]") {
  for (const Shape& parts : std::vector<Shape>{{1, 1}, {2, 3}, {4, 1}, {1, 8}, {8, 8}}) {
    const Shape bounds = {16, 24};
    std::vector<Box> boxes;
    const int64_t h = bounds[0] / parts[0], w = bounds[1] / parts[1];
    for (int64_t i = 0; i < parts[0]; ++i) {
      for (int64_t j = 0; j < parts[1]; ++j) boxes.push_back(B({i * h, j * w}, {h, w}));
    }
    // The order of the boxes does not matter.
    std::mt19937 rng(7);
    std::shuffle(boxes.begin(), boxes.end(), rng);
    INFO("grid " << ShapeToString(parts));
    CHECK(CheckExactCover(bounds, boxes).ok());
  }
  // 3-d TP x PP style grid.
  std::vector<Box> boxes;
  for (int64_t a = 0; a < 4; ++a) {
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t c = 0; c < 3; ++c) boxes.push_back(B({a, b * 5, c * 2}, {1, 5, 2}));
    }
  }
  CHECK(CheckExactCover({4, 10, 6}, boxes).ok());
}

TEST_CASE("CheckExactCover accepts uneven 1-d splits", "[array][box_index]") {
  const std::vector<int64_t> lengths = {1, 5, 7, 3, 6, 2, 5, 4};
  std::vector<Box> boxes;
  int64_t at = 0;
  for (int64_t len : lengths) {
    boxes.push_back(B({at}, {len}));
    at += len;
  }
  CHECK(at == 33);
  CHECK(CheckExactCover({33}, boxes).ok());

  SECTION("one element short at the end") {
    const CoverProblem p = CheckExactCover({34}, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 1);
    CHECK(p.region == B({33}, {1}));
  }
  SECTION("a gap in the middle") {
    boxes.erase(boxes.begin() + 2);  // [6:13]
    const CoverProblem p = CheckExactCover({33}, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 7);
    CHECK(p.region == B({6}, {7}));
  }
  SECTION("a piece one element too long") {
    boxes[3].shape[0] += 1;  // [13:17] now reaches into [16:22]
    const CoverProblem p = CheckExactCover({33}, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == 3);
    CHECK(p.second == 4);
    CHECK(p.region == B({16}, {1}));
  }
}

TEST_CASE("CheckExactCover ignores empty shards", "[array][box_index]") {
  std::vector<Box> boxes = {B({0, 0}, {2, 4}), B({2, 0}, {2, 4})};
  boxes.push_back(B({1, 1}, {0, 2}));  // inside a covered region
  boxes.push_back(B({4, 0}, {0, 4}));  // at the far edge
  boxes.push_back(B({0, 4}, {4, 0}));
  boxes.push_back(B({0, 0}, {0, 0}));
  CHECK(CheckExactCover({4, 4}, boxes).ok());

  SECTION("empty shards do not fill a hole") {
    boxes.erase(boxes.begin() + 1);
    boxes.push_back(B({2, 0}, {2, 0}));
    boxes.push_back(B({3, 0}, {0, 4}));
    const CoverProblem p = CheckExactCover({4, 4}, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 8);
    CHECK(p.region == B({2, 0}, {2, 4}));
  }
  SECTION("only empty shards of an empty tensor") {
    CHECK(CheckExactCover({0, 4}, {B({0, 0}, {0, 4}), B({0, 2}, {0, 2})}).ok());
    CHECK(CheckExactCover({0, 4}, {}).ok());
    CHECK(CheckExactCover({3, 0}, {}).ok());
  }
}

TEST_CASE("CheckExactCover reports overlaps with the pair and the region", "[array][box_index]") {
  SECTION("two shards overlapping in a corner") {
    const std::vector<Box> boxes = {B({0, 0}, {4, 4}), B({0, 4}, {4, 4}), B({4, 0}, {4, 8}),
                                    B({3, 3}, {2, 2})};
    const CoverProblem p = CheckExactCover({8, 8}, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first < p.second);
    CHECK(p.second == 3);  // the intruder overlaps all three; whichever it meets first
    Box common;
    REQUIRE(Intersect(boxes[p.first], boxes[3], &common));
    CHECK(p.region == common);
  }
  SECTION("the same shard twice") {
    const std::vector<Box> boxes = {B({0, 0}, {2, 8}), B({2, 0}, {6, 8}), B({0, 0}, {2, 8})};
    const CoverProblem p = CheckExactCover({8, 8}, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == 0);
    CHECK(p.second == 2);
    CHECK(p.region == B({0, 0}, {2, 8}));
  }
  SECTION("the pair is ordered even when the later box comes first") {
    const std::vector<Box> boxes = {B({0, 5}, {1, 5}), B({0, 0}, {1, 6})};
    const CoverProblem p = CheckExactCover({1, 10}, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == 0);
    CHECK(p.second == 1);
    CHECK(p.region == B({0, 5}, {1, 1}));
  }
  SECTION("overlap is found before a hole") {
    const std::vector<Box> boxes = {B({0}, {4}), B({3}, {2})};
    const CoverProblem p = CheckExactCover({10}, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.region == B({3}, {1}));
  }
}

TEST_CASE("CheckExactCover reports holes with a region and a count", "[array][box_index]") {
  SECTION("a missing tile") {
    std::vector<Box> boxes;
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        if (i == 1 && j == 2) continue;
        boxes.push_back(B({i * 2, j * 3}, {2, 3}));
      }
    }
    const CoverProblem p = CheckExactCover({6, 9}, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 6);
    CHECK(p.region == B({2, 6}, {2, 3}));
  }
  SECTION("several holes are all counted") {
    const std::vector<Box> boxes = {B({0, 1}, {1, 3}), B({1, 0}, {2, 2}), B({2, 3}, {1, 1})};
    const CoverProblem p = CheckExactCover({3, 4}, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 12 - 3 - 4 - 1);
    CHECK(p.region == B({0, 0}, {1, 1}));  // the first uncovered cell, row-major
  }
  SECTION("no shard at all") {
    const CoverProblem p = CheckExactCover({5, 7}, {});
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 35);
    CHECK(p.region == B({0, 0}, {5, 7}));
  }
}

TEST_CASE("CheckExactCover of 0-d arrays", "[array][box_index]") {
  const Box scalar = B({}, {});
  CHECK(CheckExactCover({}, {scalar}).ok());

  const CoverProblem hole = CheckExactCover({}, {});
  REQUIRE(hole.kind == Kind::kHole);
  CHECK(hole.uncovered_elements == 1);

  const CoverProblem twice = CheckExactCover({}, {scalar, scalar, scalar});
  REQUIRE(twice.kind == Kind::kOverlap);
  CHECK(twice.first == 0);
  CHECK(twice.second == 1);
  CHECK(twice.region == scalar);
}

TEST_CASE("CheckExactCover size-1 axes", "[array][box_index]") {
  CHECK(CheckExactCover({1, 1, 1}, {B({0, 0, 0}, {1, 1, 1})}).ok());
  std::vector<Box> layers;
  for (int64_t l = 0; l < 6; ++l) layers.push_back(B({l, 0, 0}, {1, 1, 4}));
  CHECK(CheckExactCover({6, 1, 4}, layers).ok());
  layers[4] = layers[3];
  const CoverProblem p = CheckExactCover({6, 1, 4}, layers);
  REQUIRE(p.kind == Kind::kOverlap);
  CHECK(p.first == 3);
  CHECK(p.second == 4);
  CHECK(p.region == B({3, 0, 0}, {1, 1, 4}));
}

TEST_CASE("CheckExactCover matches brute force on random grid layouts", "[array][box_index]") {
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 300; ++iter) {
    const int rank = std::uniform_int_distribution<int>(1, 3)(rng);
    Shape bounds(static_cast<size_t>(rank));
    for (auto& e : bounds) e = std::uniform_int_distribution<int64_t>(1, 12)(rng);
    std::vector<Box> boxes;
    Partition(BoxOfShape(bounds), rng, 4, &boxes);
    std::shuffle(boxes.begin(), boxes.end(), rng);
    const int mutation = std::uniform_int_distribution<int>(0, 4)(rng);
    if (mutation == 1 && boxes.size() > 1) {
      boxes.erase(boxes.begin());  // a hole
    } else if (mutation == 2) {
      boxes.push_back(boxes[std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng)]);  // a duplicate
    } else if (mutation == 3) {  // grow one box by one along an axis, if it fits
      Box& b = boxes[std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng)];
      const int d = std::uniform_int_distribution<int>(0, rank - 1)(rng);
      if (b.origin[d] + b.shape[d] < bounds[d]) b.shape[d] += 1;
      else if (b.origin[d] > 0) { b.origin[d] -= 1; b.shape[d] += 1; }
    } else if (mutation == 4) {  // shrink one box
      Box& b = boxes[std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng)];
      const int d = std::uniform_int_distribution<int>(0, rank - 1)(rng);
      b.shape[d] -= 1;
    }
    INFO("iteration " << iter << ", mutation " << mutation);
    CheckAgainstBruteForce(bounds, boxes, CheckExactCover(bounds, boxes));
  }
}

// The sweep fallback: thin staggered boxes whose cut grid far exceeds the budget.
TEST_CASE("CheckExactCover sweep fallback on irregular layouts", "[array][box_index]") {
  const int64_t rows = 1500, width = 4096;
  const Shape bounds = {rows, width};
  std::vector<Box> boxes;
  std::vector<int64_t> cut(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    cut[r] = 1 + (r * 7919) % (width - 1);  // distinct per row
    boxes.push_back(B({r, 0}, {1, cut[r]}));
    boxes.push_back(B({r, cut[r]}, {1, width - cut[r]}));
  }
  REQUIRE(boxes.size() == 3000);
  REQUIRE(GridCells(bounds, boxes) > GridBudget(boxes));  // the grid is refused
  CHECK(CheckExactCover(bounds, boxes).ok());

  SECTION("empty shards are ignored") {
    for (int64_t r = 0; r < rows; r += 37) boxes.push_back(B({r, r % width}, {0, 5}));
    CHECK(CheckExactCover(bounds, boxes).ok());
  }
  SECTION("overlap within a row") {
    const int64_t r = 777;
    boxes[2 * r + 1].origin[1] -= 1;
    boxes[2 * r + 1].shape[1] += 1;
    const CoverProblem p = CheckExactCover(bounds, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == 2 * r);
    CHECK(p.second == 2 * r + 1);
    CHECK(p.region == B({r, cut[r] - 1}, {1, 1}));
  }
  SECTION("overlap across rows") {
    int64_t r = 100;
    while (!(cut[r] < cut[r + 1])) ++r;  // then row r's left box only meets row r+1's left box
    boxes[2 * r].shape[0] = 2;
    const CoverProblem p = CheckExactCover(bounds, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == static_cast<size_t>(2 * r));
    CHECK(p.second == static_cast<size_t>(2 * r + 2));
    CHECK(p.region == B({r + 1, 0}, {1, cut[r]}));
  }
  SECTION("a duplicated shard") {
    boxes.push_back(boxes[1234]);
    const CoverProblem p = CheckExactCover(bounds, boxes);
    REQUIRE(p.kind == Kind::kOverlap);
    CHECK(p.first == 1234);
    CHECK(p.second == boxes.size() - 1);
    CHECK(p.region == boxes[1234]);
  }
  SECTION("hole") {
    const int64_t r = 999;
    boxes[2 * r + 1].origin[1] += 3;
    boxes[2 * r + 1].shape[1] -= 3;
    const CoverProblem p = CheckExactCover(bounds, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == 3);
    CHECK(p.region.shape.empty());  // the sweep counts holes but does not locate them
  }
  SECTION("a missing row") {
    boxes.erase(boxes.begin() + 20, boxes.begin() + 22);
    const CoverProblem p = CheckExactCover(bounds, boxes);
    REQUIRE(p.kind == Kind::kHole);
    CHECK(p.uncovered_elements == width);
  }
}

TEST_CASE("CheckExactCover sweep fallback matches brute force on random layouts", "[array][box_index]") {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 12; ++iter) {
    const int64_t rows = 300, width = 1 << 14;
    std::vector<Box> boxes = StaggeredRows(rows, width, 3, rng);
    // Transpose half of the layouts so the sweep runs along either axis.
    const bool transpose = iter % 2 == 1;
    Shape bounds = {rows, width};
    if (transpose) {
      std::swap(bounds[0], bounds[1]);
      for (Box& b : boxes) {
        std::swap(b.origin[0], b.origin[1]);
        std::swap(b.shape[0], b.shape[1]);
      }
    }
    REQUIRE(GridCells(bounds, boxes) > GridBudget(boxes));
    const int mutation = iter % 4;
    Box& victim = boxes[std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng)];
    const int along = transpose ? 0 : 1;
    if (mutation == 1) {
      victim.shape[along] -= 1;  // a one-element hole
    } else if (mutation == 2 && victim.origin[along] > 0) {
      victim.origin[along] -= 1;  // overlaps its neighbour
      victim.shape[along] += 1;
    } else if (mutation == 3) {
      boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(&victim - boxes.data()));
    }
    INFO("iteration " << iter);
    CheckAgainstBruteForce(bounds, boxes, CheckExactCover(bounds, boxes));
  }
}

// A tiling of n x n by 2n - 1 boxes with n distinct boundaries on each axis:
// column j is split at row j + 1. Its cut grid has n^2 cells, and a sweep
// along either axis keeps every column's first box active at once: what a
// crafted manifest can make of a naive check (quadratic in chunks).
std::vector<Box> Staircase(int64_t n) {
  std::vector<Box> boxes;
  for (int64_t j = 0; j < n; ++j) {
    boxes.push_back(B({0, j}, {j + 1, 1}));
    if (j + 1 < n) boxes.push_back(B({j + 1, j}, {n - j - 1, 1}));
  }
  return boxes;
}

TEST_CASE("CheckExactCover decides staircase tilings without the grid", "[array][box_index]") {
  for (int64_t n : {int64_t{100}, int64_t{20000}}) {
    INFO("n = " << n);
    std::vector<Box> boxes = Staircase(n);
    const Shape bounds = {n, n};
    if (n == 100) REQUIRE(GridCells(bounds, boxes) > 8 * static_cast<int64_t>(boxes.size()) + 4096);
    CHECK(CheckExactCover(bounds, boxes).ok());

    SECTION("one element short") {
      boxes.back().shape[0] -= 1;  // column n - 2's lower box loses its last row
      const CoverProblem p = CheckExactCover(bounds, boxes);
      REQUIRE(!p.ok());
      CHECK(p.uncovered_elements == 1);
      // Small inputs are located exactly; crafted large ones are reported
      // without the search that would cost quadratic time.
      CHECK(p.kind == (n == 100 ? Kind::kHole : Kind::kInexact));
    }
    SECTION("one overlap, same element count") {
      boxes.back().shape[0] -= 1;
      boxes[0].shape[0] += 1;  // column 0's upper box reaches into its lower one
      const CoverProblem p = CheckExactCover(bounds, boxes);
      REQUIRE(!p.ok());
      if (n == 100) {
        REQUIRE(p.kind == Kind::kOverlap);
        CHECK(p.region == B({1, 0}, {1, 1}));
      } else {
        CHECK(p.kind == Kind::kInexact);
        CHECK(p.uncovered_elements == 0);
      }
    }
    SECTION("a box moved onto its neighbour's place") {
      boxes[2].origin[1] = 2;  // column 1's upper box on column 2
      CHECK_FALSE(CheckExactCover(bounds, boxes).ok());
    }
  }
}

TEST_CASE("CheckExactCover decides 3-d and 4-d irregular tilings by corners", "[array][box_index]") {
  // Random guillotine partitions: exact by construction; then one box
  // perturbed, never exact. Irregular enough that the sweep path is taken.
  std::mt19937 rng(7);
  for (int rank : {3, 4}) {
    for (int trial = 0; trial < 20; ++trial) {
      Shape bounds(static_cast<size_t>(rank));
      for (auto& e : bounds) e = std::uniform_int_distribution<int64_t>(8, 40)(rng);
      std::vector<Box> boxes = {B(Shape(static_cast<size_t>(rank), 0), bounds)};
      for (int split = 0; split < 300; ++split) {
        const size_t i = std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng);
        const size_t d = std::uniform_int_distribution<size_t>(0, static_cast<size_t>(rank) - 1)(rng);
        if (boxes[i].shape[d] < 2) continue;
        const int64_t cut = std::uniform_int_distribution<int64_t>(1, boxes[i].shape[d] - 1)(rng);
        Box upper = boxes[i];
        upper.origin[d] += cut;
        upper.shape[d] -= cut;
        boxes[i].shape[d] = cut;
        boxes.push_back(upper);
      }
      INFO("rank " << rank << " trial " << trial << " boxes " << boxes.size());
      CHECK(CheckExactCover(bounds, boxes).ok());
      const size_t i = std::uniform_int_distribution<size_t>(0, boxes.size() - 1)(rng);
      const size_t d = std::uniform_int_distribution<size_t>(0, static_cast<size_t>(rank) - 1)(rng);
      std::vector<Box> bad = boxes;
      if (bad[i].origin[d] > 0) {
        bad[i].origin[d] -= 1;  // overlaps its neighbour below, uncovers its top
      } else {
        bad[i].shape[d] -= 1;  // uncovers a slab
      }
      CheckAgainstBruteForce(bounds, bad, CheckExactCover(bounds, bad));
    }
  }
}

std::vector<size_t> BruteQuery(const std::vector<Box>& boxes, const Box& q) {
  std::vector<size_t> hits;
  Box common;
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (Intersect(boxes[i], q, &common)) hits.push_back(i);
  }
  return hits;
}

Box RandomQuery(const Shape& bounds, std::mt19937& rng) {
  Box q;
  for (int64_t e : bounds) {
    const int64_t lo = std::uniform_int_distribution<int64_t>(0, e)(rng);
    const int64_t hi = std::uniform_int_distribution<int64_t>(lo, std::min(e, lo + 1 + e / 3))(rng);
    q.origin.push_back(lo);
    q.shape.push_back(hi - lo);
  }
  return q;
}

void CheckQueries(const Shape& bounds, const std::vector<Box>& boxes, int queries, std::mt19937& rng) {
  const BoxIndex index(bounds, &boxes);
  for (int k = 0; k < queries; ++k) {
    const Box q = k == 0 ? BoxOfShape(bounds) : RandomQuery(bounds, rng);
    // Query appends: what was in *out stays.
    std::vector<size_t> got = {12345};
    index.Query(q, &got);
    REQUIRE(!got.empty());
    CHECK(got.front() == 12345);
    got.erase(got.begin());
    INFO("query " << q.ToString());
    REQUIRE(got == BruteQuery(boxes, q));
  }
}

TEST_CASE("BoxIndex::Query matches brute force (grid mode)", "[array][box_index]") {
  std::mt19937 rng(42);
  for (int iter = 0; iter < 60; ++iter) {
    const int rank = std::uniform_int_distribution<int>(1, 4)(rng);
    Shape bounds(static_cast<size_t>(rank));
    for (auto& e : bounds) e = std::uniform_int_distribution<int64_t>(1, rank <= 2 ? 16 : 7)(rng);
    std::vector<Box> boxes;
    Partition(BoxOfShape(bounds), rng, rank <= 2 ? 4 : 24, &boxes);
    std::shuffle(boxes.begin(), boxes.end(), rng);
    // Leave holes and add empty boxes: neither is ever returned.
    std::vector<Box> kept;
    for (const Box& b : boxes) {
      if (std::uniform_int_distribution<int>(0, 4)(rng) != 0) kept.push_back(b);
      if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
        Box e = b;
        e.shape[0] = 0;
        kept.push_back(e);
      }
    }
    REQUIRE(GridCells(bounds, kept) <= GridBudget(kept));
    INFO("iteration " << iter << " bounds " << ShapeToString(bounds));
    CheckQueries(bounds, kept, 40, rng);
  }
}

TEST_CASE("BoxIndex::Query matches brute force (sweep mode)", "[array][box_index]") {
  std::mt19937 rng(4242);
  for (int iter = 0; iter < 4; ++iter) {
    const int64_t rows = 400, width = 1 << 13;
    std::vector<Box> boxes = StaggeredRows(rows, width, 4, rng);
    Shape bounds = {rows, width};
    if (iter % 2 == 1) {  // sweep along the other axis
      std::swap(bounds[0], bounds[1]);
      for (Box& b : boxes) {
        std::swap(b.origin[0], b.origin[1]);
        std::swap(b.shape[0], b.shape[1]);
      }
    }
    if (iter >= 2) {  // holes and empty boxes
      std::vector<Box> kept;
      for (size_t i = 0; i < boxes.size(); ++i) {
        if (i % 5 != 0) kept.push_back(boxes[i]);
        if (i % 11 == 0) kept.push_back(B(boxes[i].origin, {0, 0}));
      }
      boxes = std::move(kept);
    }
    REQUIRE(GridCells(bounds, boxes) > GridBudget(boxes));
    INFO("iteration " << iter);
    CheckQueries(bounds, boxes, 300, rng);
  }
}

TEST_CASE("BoxIndex::Query edge cases", "[array][box_index]") {
  SECTION("0-d") {
    const std::vector<Box> one = {B({}, {})};
    const BoxIndex index({}, &one);
    std::vector<size_t> got;
    index.Query(B({}, {}), &got);
    CHECK(got == std::vector<size_t>{0});

    const std::vector<Box> none;
    const BoxIndex empty_index({}, &none);
    got.clear();
    empty_index.Query(B({}, {}), &got);
    CHECK(got.empty());
  }
  SECTION("empty queries return nothing") {
    const std::vector<Box> boxes = {B({0, 0}, {4, 4}), B({4, 0}, {4, 4})};
    const BoxIndex index({8, 4}, &boxes);
    std::vector<size_t> got;
    index.Query(B({2, 1}, {0, 3}), &got);
    index.Query(B({0, 0}, {8, 0}), &got);
    CHECK(got.empty());
    index.Query(B({3, 3}, {2, 1}), &got);
    CHECK(got == std::vector<size_t>{0, 1});
  }
  SECTION("a query between cuts") {
    const std::vector<Box> boxes = {B({0}, {10}), B({10}, {10}), B({20}, {10})};
    const BoxIndex index({30}, &boxes);
    std::vector<size_t> got;
    index.Query(B({12}, {3}), &got);
    CHECK(got == std::vector<size_t>{1});
    got.clear();
    index.Query(B({9}, {12}), &got);
    CHECK(got == std::vector<size_t>{0, 1, 2});
    got.clear();
    index.Query(B({10}, {10}), &got);
    CHECK(got == std::vector<size_t>{1});
  }
  SECTION("empty array") {
    const std::vector<Box> boxes = {B({0, 0}, {0, 4})};
    const BoxIndex index({0, 4}, &boxes);
    std::vector<size_t> got;
    index.Query(B({0, 0}, {0, 4}), &got);
    CHECK(got.empty());
  }
}

}  // namespace
}  // namespace dcp::array
