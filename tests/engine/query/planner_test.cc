// Copyright (c) dcp authors.

#include "engine/query/planner.h"

#include <catch2/catch.hpp>

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

}  // namespace
}  // namespace dcp::query
