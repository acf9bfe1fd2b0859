// Copyright (c) dcp authors.

#include "engine/query/planner.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "engine/array/box.h"
#include "engine/query/assembler.h"
#include "tests/engine/query/query_fixture.h"

namespace dcp::query {
namespace {

using testing::StatusIs;

TEST_CASE("the planner reads each overlapping chunk once, only those", "[query]") {
  StepFixture f;
  auto index = f.Index();
  ReadPlanner planner(index.get());
  testing::HostTensor a(DType::kFloat32, {3, 6}), b(DType::kFloat32, {2, 3});
  // Rows 2..5 touch chunks [0:3) and [3:6) of rank 0; rows 4..6 again [3:6).
  REQUIRE_OK(planner.Add("w", DType::kFloat32, {12, 6}, Box{{2, 0}, {3, 6}}, a.view(), "a"));
  REQUIRE_OK(planner.Add("w", DType::kFloat32, {12, 6}, Box{{4, 3}, {2, 3}}, b.view(), "b"));
  const ReadPlan plan = planner.Finish();
  REQUIRE(plan.reads.size() == 2);
  CHECK(plan.reads[0].chunk->box.origin == Shape{0, 0});
  CHECK(plan.reads[0].copies.size() == 1);
  CHECK(plan.reads[0].copies[0].src == Box{{2, 0}, {1, 6}});
  CHECK(plan.reads[1].chunk->box.origin == Shape{3, 0});
  CHECK(plan.reads[1].copies.size() == 2);  // one chunk feeds both requests
  CHECK(plan.reads[1].copies[1].src == Box{{1, 3}, {2, 3}});
}

TEST_CASE("destinations may omit leading size-1 axes", "[query]") {
  StepFixture f;
  auto index = f.Index();
  ReadPlanner planner(index.get());
  testing::HostTensor row(DType::kFloat32, {6});
  REQUIRE_OK(planner.Add("w", DType::kFloat32, {12, 6}, Box{{7, 0}, {1, 6}}, row.view(), "row"));
  CHECK(planner.Finish().reads.size() == 1);
}

TEST_CASE("the planner checks requests against the step", "[query]") {
  StepFixture f;
  auto index = f.Index();
  ReadPlanner planner(index.get());
  testing::HostTensor buf(DType::kFloat32, {2, 6});
  REQUIRE_THAT(planner.Add("x", DType::kFloat32, {12, 6}, Box{{0, 0}, {2, 6}}, buf.view(), "req"),
               StatusIs(StatusCode::kNotFound, "req: tensor 'x' is not in step 3"));
  REQUIRE_THAT(planner.Add("w", DType::kFloat64, {12, 6}, Box{{0, 0}, {2, 6}}, buf.view(), "req"),
               StatusIs(StatusCode::kInvalidArgument, "requests dtype float64"));
  REQUIRE_THAT(planner.Add("w", DType::kFloat32, {12, 7}, Box{{0, 0}, {2, 6}}, buf.view(), "req"),
               StatusIs(StatusCode::kInvalidArgument, "requests global shape (12, 7)"));
  REQUIRE_THAT(planner.Add("w", DType::kFloat32, {12, 6}, Box{{11, 0}, {2, 6}}, buf.view(), "req"),
               StatusIs(StatusCode::kInvalidArgument, "region [11:13, 0:6] lies outside"));
  REQUIRE_THAT(planner.Add("w", DType::kFloat32, {12, 6}, Box{{0, 0}, {3, 6}}, buf.view(), "req"),
               StatusIs(StatusCode::kInvalidArgument, "destination shape (2, 6) does not match"));
  testing::HostTensor ibuf(DType::kInt32, {2, 6});
  REQUIRE_THAT(planner.Add("w", DType::kFloat32, {12, 6}, Box{{0, 0}, {2, 6}}, ibuf.view(), "req"),
               StatusIs(StatusCode::kInvalidArgument, "destination dtype int32"));
}

// A load request of "w" with a destination it owns.
struct Request {
  ShardedTensor t;
  testing::HostTensor dest;

  Request(Shape global, Box box, std::optional<FlatRange> flat = std::nullopt, bool mismatch = false)
      : dest(DType::kFloat32, flat ? Shape{flat->size()} : box.shape) {
    std::memset(dest.bytes().data(), 0xAB, dest.bytes().size());  // garbage the load must overwrite
    t.key = "w";
    t.dtype = DType::kFloat32;
    t.local_shape = box.shape;
    t.global_shape = std::move(global);
    t.global_offset = box.origin;
    t.data = dest.view();
    t.flattened_range = flat;
    t.allow_shape_mismatch = mismatch;
  }
};

Status Execute(StepFixture& f, std::vector<Request*> requests) {
  auto index = f.Index();
  ReadPlanner planner(index.get());
  for (Request* r : requests) DCP_RETURN_IF_ERROR(planner.AddShard(r->t, "req"));
  StoreSet stores(f.root, nullptr, &f.memory);
  return ExecuteReadPlan(&stores, f.generation, planner.Finish(), LoadOptions());
}

// Region `box` of the saved (12, 6) tensor "w", row-major.
std::string Saved(const Box& box) {
  testing::HostTensor t(DType::kFloat32, box.shape);
  testing::FillRegion("w", {12, 6}, box, t.view());
  return t.bytes();
}

TEST_CASE("flat requests read the boxes of their range", "[query][flat]") {
  StepFixture f;
  // Rows 2..8 (both rank stores, three chunks), elements [5, 31) of their flattening.
  const Box box{{2, 0}, {6, 6}};
  Request a({12, 6}, box, FlatRange{5, 31});
  Request whole({12, 6}, box, FlatRange{0, 36});
  Request empty({12, 6}, box, FlatRange{36, 36});
  Request single({12, 6}, Box{{11, 0}, {1, 6}}, FlatRange{4, 5});
  REQUIRE_OK(Execute(f, {&a, &whole, &empty, &single}));
  const std::string all = Saved(box);
  CHECK(a.dest.bytes() == all.substr(5 * 4, 26 * 4));
  CHECK(whole.dest.bytes() == all);
  CHECK(single.dest.bytes() == Saved(Box{{11, 4}, {1, 1}}));
  // Every range of a small box, through strided destinations too.
  for (int64_t b = 0; b <= 12; ++b) {
    for (int64_t e = b; e <= 12; ++e) {
      INFO("range [" << b << ", " << e << ")");
      const Box small{{5, 1}, {3, 4}};
      Request r({12, 6}, small, FlatRange{b, e});
      std::vector<float> strided(static_cast<size_t>(2 * (e - b) + 1), -1.0f);
      r.t.data = TensorView(strided.data(), DType::kFloat32, {e - b}, {2});
      REQUIRE_OK(Execute(f, {&r}));
      const std::string expected = Saved(small);
      for (int64_t i = 0; i < e - b; ++i) {
        CHECK(std::memcmp(&strided[static_cast<size_t>(2 * i)], expected.data() + 4 * (b + i), 4) == 0);
        CHECK(strided[static_cast<size_t>(2 * i + 1)] == -1.0f);
      }
    }
  }
}

TEST_CASE("allow_shape_mismatch clips to the saved tensor and zero-fills the rest", "[query][mismatch]") {
  StepFixture f;
  const std::string zeros(4 * 6 * 4, '\0');
  SECTION("a larger request: rows past the saved tensor are zeros") {
    Request r({14, 6}, Box{{8, 0}, {6, 6}}, std::nullopt, true);
    REQUIRE_OK(Execute(f, {&r}));
    CHECK(r.dest.bytes().substr(0, 4 * 24) == Saved(Box{{8, 0}, {4, 6}}));
    CHECK(r.dest.bytes().substr(4 * 24) == std::string(4 * 12, '\0'));
  }
  SECTION("a smaller request: clipped") {
    Request r({12, 4}, Box{{0, 0}, {12, 4}}, std::nullopt, true);
    REQUIRE_OK(Execute(f, {&r}));
    CHECK(r.dest.bytes() == Saved(Box{{0, 0}, {12, 4}}));
  }
  SECTION("larger on one axis, smaller on the other") {
    Request r({10, 8}, Box{{8, 4}, {2, 4}}, std::nullopt, true);
    REQUIRE_OK(Execute(f, {&r}));
    const std::string inside = Saved(Box{{8, 4}, {2, 2}});
    const std::string& got = r.dest.bytes();
    for (int row = 0; row < 2; ++row) {
      CHECK(got.substr(static_cast<size_t>(row * 16), 8) == inside.substr(static_cast<size_t>(row * 8), 8));
      CHECK(got.substr(static_cast<size_t>(row * 16 + 8), 8) == std::string(8, '\0'));
    }
  }
  SECTION("a request entirely outside the saved tensor is all zeros") {
    Request r({16, 6}, Box{{12, 0}, {4, 6}}, std::nullopt, true);
    REQUIRE_OK(Execute(f, {&r}));
    CHECK(r.dest.bytes() == zeros);
  }
  SECTION("a strided destination keeps its gaps") {
    Request r({13, 6}, Box{{11, 0}, {2, 6}}, std::nullopt, true);
    std::vector<float> backing(2 * 8, -1.0f);
    r.t.data = TensorView(backing.data(), DType::kFloat32, {2, 6}, {8, 1});
    REQUIRE_OK(Execute(f, {&r}));
    const std::string row = Saved(Box{{11, 0}, {1, 6}});
    CHECK(std::memcmp(backing.data(), row.data(), 24) == 0);
    for (int c = 0; c < 6; ++c) CHECK(backing[static_cast<size_t>(8 + c)] == 0.0f);
    CHECK(backing[6] == -1.0f);
    CHECK(backing[15] == -1.0f);
  }
  SECTION("with a flat request") {
    // Box rows 10..14 of a (14, 6) request; range [9, 20): row 11 cols 3..5 and
    // row 12 (saved), rows 12..13 (padding).
    Request r({14, 6}, Box{{10, 0}, {4, 6}}, FlatRange{9, 20}, true);
    REQUIRE_OK(Execute(f, {&r}));
    const std::string& got = r.dest.bytes();
    CHECK(got.substr(0, 12) == Saved(Box{{11, 3}, {1, 3}}));
    CHECK(got.substr(12) == std::string(8 * 4, '\0'));
  }
  SECTION("the same global shape: an ordinary load") {
    Request r({12, 6}, Box{{3, 0}, {2, 6}}, std::nullopt, true);
    REQUIRE_OK(Execute(f, {&r}));
    CHECK(r.dest.bytes() == Saved(Box{{3, 0}, {2, 6}}));
  }
}

TEST_CASE("shape mismatch errors", "[query][mismatch]") {
  StepFixture f;
  Request without({14, 6}, Box{{8, 0}, {6, 6}});
  CHECK_THAT(Execute(f, {&without}),
             StatusIs(StatusCode::kInvalidArgument,
                      "req: requests global shape (14, 6) but step 3 holds tensor 'w' with global shape (12, 6) (set "
                      "allow_shape_mismatch to pad or clip)"));
  Request axes({12, 6, 1}, Box{{0, 0, 0}, {12, 6, 1}}, std::nullopt, true);
  CHECK_THAT(Execute(f, {&axes}),
             StatusIs(StatusCode::kInvalidArgument,
                      "with global shape (12, 6): allow_shape_mismatch pads or clips axes but cannot change their number"));
  Request dtype({14, 6}, Box{{8, 0}, {6, 6}}, std::nullopt, true);
  dtype.t.dtype = DType::kInt32;
  dtype.t.data = TensorView(dtype.dest.bytes().data(), DType::kInt32, {6, 6});
  CHECK_THAT(Execute(f, {&dtype}), StatusIs(StatusCode::kInvalidArgument, "req: requests dtype int32 but step 3"));
  Request missing({12, 6}, Box{{0, 0}, {1, 6}}, std::nullopt, true);
  missing.t.key = "nope";
  CHECK_THAT(Execute(f, {&missing}), StatusIs(StatusCode::kNotFound, "req: tensor 'nope' is not in step 3"));
}

}  // namespace
}  // namespace dcp::query
