// Copyright (c) dcp authors.
// Tests of engine/array/box.cc: box arithmetic, including empty, size-1 and 0-d boxes.

#include "engine/array/box.h"

#include <catch2/catch.hpp>

#include "dcp/types.h"

namespace dcp::array {
namespace {

Box B(Shape origin, Shape shape) { return Box{std::move(origin), std::move(shape)}; }

TEST_CASE("BoxOfShape is at the origin", "[array][box]") {
  CHECK(BoxOfShape({3, 4}) == B({0, 0}, {3, 4}));
  CHECK(BoxOfShape({}) == B({}, {}));
  CHECK(BoxOfShape({0, 5}) == B({0, 0}, {0, 5}));
  CHECK(BoxOfShape({}).num_elements() == 1);
  CHECK(BoxOfShape({0, 5}).num_elements() == 0);
}

TEST_CASE("IsWithin checks ranks, origins and ends", "[array][box]") {
  CHECK(IsWithin(B({0, 0}, {4, 6}), {4, 6}));
  CHECK(IsWithin(B({1, 2}, {3, 4}), {4, 6}));
  CHECK_FALSE(IsWithin(B({1, 2}, {4, 4}), {4, 6}));   // ends at 5 > 4
  CHECK_FALSE(IsWithin(B({0, 3}, {1, 4}), {4, 6}));   // ends at 7 > 6
  CHECK_FALSE(IsWithin(B({-1, 0}, {1, 1}), {4, 6}));  // negative origin
  CHECK_FALSE(IsWithin(B({0, 0}, {-1, 1}), {4, 6}));  // negative extent
  CHECK_FALSE(IsWithin(B({0}, {4}), {4, 6}));         // rank mismatch
  CHECK_FALSE(IsWithin(B({0, 0}, {4}), {4, 6}));      // origin and shape ranks differ
  CHECK_FALSE(IsWithin(B({0}, {4, 6}), {4, 6}));

  SECTION("size-1 axes") {
    CHECK(IsWithin(B({3, 5}, {1, 1}), {4, 6}));
    CHECK_FALSE(IsWithin(B({4, 5}, {1, 1}), {4, 6}));
    CHECK(IsWithin(B({0}, {1}), {1}));
  }
  SECTION("empty boxes may sit anywhere in the closed range") {
    CHECK(IsWithin(B({4, 0}, {0, 6}), {4, 6}));
    CHECK(IsWithin(B({2, 6}, {2, 0}), {4, 6}));
    CHECK_FALSE(IsWithin(B({5, 0}, {0, 6}), {4, 6}));
    CHECK_FALSE(IsWithin(B({0, 0}, {0, 7}), {4, 6}));
    CHECK(IsWithin(B({0}, {0}), {0}));
    CHECK_FALSE(IsWithin(B({0}, {1}), {0}));
  }
  SECTION("0-d") {
    CHECK(IsWithin(B({}, {}), {}));
    CHECK_FALSE(IsWithin(B({}, {}), {1}));
    CHECK_FALSE(IsWithin(B({0}, {1}), {}));
  }
}

TEST_CASE("Contains", "[array][box]") {
  const Box outer = B({2, 3}, {4, 5});  // [2:6, 3:8]
  CHECK(Contains(outer, outer));
  CHECK(Contains(outer, B({2, 3}, {1, 1})));
  CHECK(Contains(outer, B({5, 7}, {1, 1})));
  CHECK(Contains(outer, B({3, 4}, {2, 2})));
  CHECK_FALSE(Contains(outer, B({1, 3}, {1, 1})));
  CHECK_FALSE(Contains(outer, B({6, 7}, {1, 1})));
  CHECK_FALSE(Contains(outer, B({5, 7}, {1, 2})));
  CHECK_FALSE(Contains(B({3, 4}, {2, 2}), outer));
  CHECK_FALSE(Contains(outer, B({2}, {1})));  // rank mismatch

  SECTION("empty inner boxes: contained iff the origin lies in outer's closed range") {
    CHECK(Contains(outer, B({2, 3}, {0, 0})));
    CHECK(Contains(outer, B({6, 8}, {0, 0})));
    CHECK(Contains(outer, B({4, 3}, {0, 5})));
    // Empty along axis 0, so the (too long) extent along axis 1 holds no element.
    CHECK(Contains(outer, B({4, 3}, {0, 100})));
    CHECK_FALSE(Contains(outer, B({7, 3}, {0, 1})));
    CHECK_FALSE(Contains(outer, B({1, 3}, {0, 1})));
    CHECK_FALSE(Contains(outer, B({4, 9}, {0, 1})));
  }
  SECTION("an empty outer box contains no element") {
    CHECK_FALSE(Contains(B({0, 0}, {0, 4}), B({0, 0}, {1, 1})));
    CHECK(Contains(B({0, 0}, {0, 4}), B({0, 0}, {0, 4})));
  }
  SECTION("0-d boxes contain themselves") {
    CHECK(Contains(B({}, {}), B({}, {})));
  }
}

TEST_CASE("Intersect", "[array][box]") {
  Box out;
  SECTION("overlapping boxes") {
    REQUIRE(Intersect(B({0, 0}, {4, 6}), B({2, 3}, {5, 5}), &out));
    CHECK(out == B({2, 3}, {2, 3}));
    REQUIRE(Intersect(B({2, 3}, {5, 5}), B({0, 0}, {4, 6}), &out));
    CHECK(out == B({2, 3}, {2, 3}));
  }
  SECTION("one inside the other") {
    REQUIRE(Intersect(B({0, 0}, {10, 10}), B({3, 4}, {1, 2}), &out));
    CHECK(out == B({3, 4}, {1, 2}));
  }
  SECTION("touching boxes share no element") {
    CHECK_FALSE(Intersect(B({0, 0}, {4, 6}), B({4, 0}, {4, 6}), &out));
    CHECK_FALSE(Intersect(B({0, 0}, {4, 6}), B({0, 6}, {4, 1}), &out));
  }
  SECTION("disjoint along one axis only") {
    CHECK_FALSE(Intersect(B({0, 0}, {4, 2}), B({0, 5}, {4, 2}), &out));
  }
  SECTION("size-1 axes") {
    REQUIRE(Intersect(B({3, 0}, {1, 6}), B({0, 2}, {8, 1}), &out));
    CHECK(out == B({3, 2}, {1, 1}));
  }
  SECTION("empty boxes intersect nothing, not even a box they sit in") {
    CHECK_FALSE(Intersect(B({1, 1}, {0, 3}), B({0, 0}, {4, 6}), &out));
    CHECK_FALSE(Intersect(B({0, 0}, {4, 6}), B({1, 1}, {2, 0}), &out));
    CHECK_FALSE(Intersect(B({1, 1}, {0, 3}), B({1, 1}, {0, 3}), &out));
  }
  SECTION("0-d boxes intersect themselves") {
    REQUIRE(Intersect(B({}, {}), B({}, {}), &out));
    CHECK(out == B({}, {}));
    CHECK(out.num_elements() == 1);
  }
  SECTION("rank mismatch") {
    CHECK_FALSE(Intersect(B({0}, {4}), B({0, 0}, {4, 4}), &out));
  }
  SECTION("1-d") {
    REQUIRE(Intersect(B({5}, {10}), B({0}, {7}), &out));
    CHECK(out == B({5}, {2}));
  }
}

TEST_CASE("RelativeTo subtracts the origin", "[array][box]") {
  CHECK(RelativeTo(B({5, 7}, {2, 3}), {4, 4}) == B({1, 3}, {2, 3}));
  CHECK(RelativeTo(B({5, 7}, {0, 3}), {5, 7}) == B({0, 0}, {0, 3}));
  CHECK(RelativeTo(B({1}, {2}), {3}) == B({-2}, {2}));
  CHECK(RelativeTo(B({}, {}), {}) == B({}, {}));
}

TEST_CASE("LinearOffset is row-major", "[array][box]") {
  CHECK(LinearOffset({}, {}) == 0);
  CHECK(LinearOffset({0, 0}, {3, 4}) == 0);
  CHECK(LinearOffset({0, 3}, {3, 4}) == 3);
  CHECK(LinearOffset({1, 0}, {3, 4}) == 4);
  CHECK(LinearOffset({2, 3}, {3, 4}) == 11);
  CHECK(LinearOffset({1, 2, 3}, {2, 3, 4}) == 1 * 12 + 2 * 4 + 3);
  CHECK(LinearOffset({0, 0, 5}, {1, 1, 6}) == 5);
  // Every index of a shape maps to a distinct offset in [0, n).
  const Shape shape = {3, 1, 4, 2};
  std::vector<bool> seen(static_cast<size_t>(NumElements(shape)), false);
  for (int64_t a = 0; a < 3; ++a) {
    for (int64_t c = 0; c < 4; ++c) {
      for (int64_t d = 0; d < 2; ++d) {
        const int64_t off = LinearOffset({a, 0, c, d}, shape);
        REQUIRE(off >= 0);
        REQUIRE(off < NumElements(shape));
        CHECK_FALSE(seen[static_cast<size_t>(off)]);
        seen[static_cast<size_t>(off)] = true;
      }
    }
  }
}

TEST_CASE("Box::ToString and num_elements", "[array][box]") {
  CHECK(B({0, 8}, {4, 8}).ToString() == "[0:4, 8:16]");
  CHECK(B({}, {}).ToString() == "[]");
  // Hostile boxes are printed in the errors that refuse them (found by the fuzzer).
  CHECK(B({INT64_MAX - 1}, {5}).ToString() == "[9223372036854775806:9223372036854775806+5]");
  CHECK(B({2, 0, 1}, {3, 0, 1}).num_elements() == 0);
  CHECK(B({2, 0, 1}, {3, 2, 1}).num_elements() == 6);
}

}  // namespace
}  // namespace dcp::array
