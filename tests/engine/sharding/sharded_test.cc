// Copyright (c) dcp authors.
//
// Tests of api/src/sharded.cc (ShardedTensor, ShardedObject and
// ShardedTensorFromRankOffsets), kept with the sharding tests that use them.

#include "dcp/sharded.h"

#include <catch2/catch.hpp>

#include <vector>

#include "dcp/tensor_view.h"
#include "engine/array/box_index.h"
#include "engine/sharding/validation.h"
#include "tests/testing/status_matchers.h"

namespace dcp {
namespace {

using dcp::testing::StatusIs;

alignas(8) char g_data[1 << 12];

TensorView View(Shape shape, DType dtype = DType::kFloat32) { return TensorView(g_data, dtype, std::move(shape)); }

TEST_CASE("IsMainReplica", "[sharding][sharded]") {
  CHECK(IsMainReplica({}));
  CHECK(IsMainReplica({0}));
  CHECK(IsMainReplica({0, 0, 0}));
  CHECK_FALSE(IsMainReplica({0, 1, 0}));
  CHECK_FALSE(IsMainReplica({-1}));
}

TEST_CASE("ShardedTensor::Whole and global_box", "[sharding][sharded]") {
  const ShardedTensor t = ShardedTensor::Whole("w", View({3, 5}, DType::kBFloat16));
  CHECK(t.key == "w");
  CHECK(t.dtype == DType::kBFloat16);
  CHECK(t.local_shape == Shape{3, 5});
  CHECK(t.global_shape == Shape{3, 5});
  CHECK(t.global_offset == Shape{0, 0});
  CHECK(t.prepend_axis_num == 0);
  CHECK(t.is_main_replica());
  CHECK(t.global_box() == Box{{0, 0}, {3, 5}});
  CHECK_OK(sharding::ValidateTensorLeaf("w", t));

  const ShardedTensor s = ShardedTensor::Whole("s", View({}));
  CHECK(s.global_box() == Box{{}, {}});
  CHECK_OK(sharding::ValidateTensorLeaf("s", s));
}

TEST_CASE("ShardedObject::unique_key is Megatron's", "[sharding][sharded]") {
  ShardedObject o;
  o.key = "optimizer.rng";
  o.global_shape = {2, 4};
  o.global_offset = {1, 3};
  CHECK(o.unique_key() == "optimizer.rng/shard_1.3_2.4");
  o.global_shape = {8};
  o.global_offset = {5};
  CHECK(o.unique_key() == "optimizer.rng/shard_5_8");
  o.global_shape = {};
  o.global_offset = {};
  CHECK(o.unique_key() == "optimizer.rng/shard__");
}

TEST_CASE("ShardedTensorFromRankOffsets", "[sharding][sharded]") {
  SECTION("no fragmentation: the whole tensor") {
    const ShardedTensor t = ValueOrDie(ShardedTensorFromRankOffsets("w", View({4, 6}), {}));
    CHECK(t.global_shape == Shape{4, 6});
    CHECK(t.global_offset == Shape{0, 0});
    CHECK(t.local_shape == Shape{4, 6});
    CHECK(t.dtype == DType::kFloat32);
    CHECK(t.data.data() == g_data);
  }
  SECTION("two fragmented axes") {
    const ShardedTensor t =
        ValueOrDie(ShardedTensorFromRankOffsets("w", View({4, 6}), {{0, 1, 2}, {1, 2, 3}}, {0, 1}));
    CHECK(t.key == "w");
    CHECK(t.global_shape == Shape{8, 18});
    CHECK(t.global_offset == Shape{4, 12});
    CHECK(t.global_box() == Box{{4, 12}, {4, 6}});
    CHECK(t.replica_id == ReplicaId{0, 1});
    CHECK_FALSE(t.is_main_replica());
    CHECK_OK(sharding::ValidateTensorLeaf("model.w", t));
  }
  SECTION("prepended axes") {
    const ShardedTensor t =
        ValueOrDie(ShardedTensorFromRankOffsets("layers", View({4, 6}), {{0, 3, 12}, {2, 1, 2}}, {}, 1));
    CHECK(t.prepend_axis_num == 1);
    CHECK(t.local_shape == Shape{4, 6});
    CHECK(t.global_shape == Shape{12, 4, 12});
    CHECK(t.global_offset == Shape{3, 0, 6});
    CHECK(t.global_box() == Box{{3, 0, 6}, {1, 4, 6}});
    CHECK_OK(sharding::ValidateTensorLeaf("layers", t));

    const ShardedTensor u = ValueOrDie(ShardedTensorFromRankOffsets("layers", View({5}), {}, {}, 2));
    CHECK(u.global_shape == Shape{1, 1, 5});
    CHECK(u.global_offset == Shape{0, 0, 0});
    CHECK(u.global_box() == Box{{0, 0, 0}, {1, 1, 5}});
  }
  SECTION("0-d data") {
    const ShardedTensor t = ValueOrDie(ShardedTensorFromRankOffsets("step", View({}), {}));
    CHECK(t.global_shape.empty());
    CHECK(t.global_box() == Box{{}, {}});
    const ShardedTensor p = ValueOrDie(ShardedTensorFromRankOffsets("step", View({}), {{0, 2, 4}}, {}, 1));
    CHECK(p.global_shape == Shape{4});
    CHECK(p.global_offset == Shape{2});
  }
}

TEST_CASE("ShardedTensorFromRankOffsets of every rank tiles the tensor", "[sharding][sharded]") {
  // PP = 3 stages (a prepended layer axis) x TP = 4 along the last axis.
  std::vector<Box> boxes;
  Shape global;
  for (int64_t pp = 0; pp < 3; ++pp) {
    for (int64_t tp = 0; tp < 4; ++tp) {
      const ShardedTensor t =
          ValueOrDie(ShardedTensorFromRankOffsets("w", View({5, 2}), {{0, pp, 3}, {2, tp, 4}}, {}, 1));
      if (global.empty()) global = t.global_shape;
      CHECK(t.global_shape == global);
      boxes.push_back(t.global_box());
    }
  }
  CHECK(global == Shape{3, 5, 8});
  CHECK(array::CheckExactCover(global, boxes).ok());
}

TEST_CASE("ShardedTensorFromRankOffsets errors name the key", "[sharding][sharded]") {
  auto err = [](std::vector<AxisFragmentation> f, int prepend = 0, TensorView v = View({4, 6})) {
    return ShardedTensorFromRankOffsets("dec.w", std::move(v), std::move(f), {}, prepend).status();
  };
  CHECK_THAT(err({{2, 0, 2}}),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': axis 2 is out of range for a 2-d global tensor"));
  CHECK_THAT(err({{3, 0, 2}}, 1),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': axis 3 is out of range for a 3-d global tensor"));
  CHECK_THAT(err({{-1, 0, 2}}), StatusIs(StatusCode::kInvalidArgument, "axis -1 is out of range"));
  CHECK_THAT(err({{1, 0, 2}, {1, 1, 2}}),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': axis 1 is fragmented twice"));
  CHECK_THAT(err({{0, 0, 0}}),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': axis 0 has fragments 0 < 1"));
  CHECK_THAT(err({{0, 0, -3}}), StatusIs(StatusCode::kInvalidArgument, "axis 0 has fragments -3 < 1"));
  CHECK_THAT(err({{0, -1, 2}}),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': axis 0 has rank offset -1 outside [0, 2)"));
  CHECK_THAT(err({{1, 2, 2}}), StatusIs(StatusCode::kInvalidArgument, "axis 1 has rank offset 2 outside [0, 2)"));
  CHECK_THAT(err({}, -1),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': prepend_axis_num is negative"));
  CHECK_THAT(err({}, 0, TensorView(g_data, DType::kFloat32, {4, -6})),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': view has negative extent -6 on axis 1"));
  CHECK_THAT(err({}, 0, TensorView(static_cast<void*>(nullptr), DType::kFloat32, {4, 6})),
             StatusIs(StatusCode::kInvalidArgument, "sharded tensor 'dec.w': view of shape (4, 6) has a null data pointer"));
}

TEST_CASE("ShardedTensorFromRankOffsetsFlat", "[sharding][sharded]") {
  SECTION("geometry of the non-flat box, data and range of the slice") {
    const ShardedTensor t = ValueOrDie(ShardedTensorFromRankOffsetsFlat(
        "optimizer.state.exp_avg.w", View({7}), {4, 6}, {{0, 1, 2}}, FlatRange{5, 12}, {0, 0, 1}));
    CHECK(t.key == "optimizer.state.exp_avg.w");
    CHECK(t.local_shape == Shape{4, 6});
    CHECK(t.global_shape == Shape{8, 6});
    CHECK(t.global_offset == Shape{4, 0});
    CHECK(t.global_box() == Box{{4, 0}, {4, 6}});
    REQUIRE(t.flattened_range.has_value());
    CHECK(*t.flattened_range == FlatRange{5, 12});
    CHECK(t.flattened_range->size() == 7);
    CHECK(t.data.shape() == Shape{7});
    CHECK(t.replica_id == ReplicaId{0, 0, 1});
  }
  SECTION("empty and full ranges, prepended axes") {
    const ShardedTensor e = ValueOrDie(ShardedTensorFromRankOffsetsFlat("w", View({0}), {4, 6}, {}, FlatRange{24, 24}));
    CHECK(*e.flattened_range == FlatRange{24, 24});
    const ShardedTensor f =
        ValueOrDie(ShardedTensorFromRankOffsetsFlat("w", View({24}), {4, 6}, {{0, 2, 3}}, FlatRange{0, 24}, {}, 1));
    CHECK(f.global_shape == Shape{3, 4, 6});
    CHECK(f.global_box() == Box{{2, 0, 0}, {1, 4, 6}});
  }
  SECTION("errors name the key") {
    auto err = [](TensorView v, Shape local, FlatRange r, std::vector<AxisFragmentation> f = {}) {
      return ShardedTensorFromRankOffsetsFlat("dec.w", std::move(v), std::move(local), std::move(f), r).status();
    };
    CHECK_THAT(err(View({3}), {4, 6}, {-1, 2}),
               StatusIs(StatusCode::kInvalidArgument,
                        "sharded tensor 'dec.w': flattened range [-1, 2) is not within [0, 24] of local shape (4, 6)"));
    CHECK_THAT(err(View({0}), {4, 6}, {5, 4}), StatusIs(StatusCode::kInvalidArgument, "flattened range [5, 4)"));
    CHECK_THAT(err(View({2}), {4, 6}, {23, 25}), StatusIs(StatusCode::kInvalidArgument, "flattened range [23, 25)"));
    CHECK_THAT(err(View({3}), {4, 6}, {0, 4}),
               StatusIs(StatusCode::kInvalidArgument,
                        "sharded tensor 'dec.w': flat data of shape (3,) must be 1-D with 4 elements for flattened range [0, 4)"));
    CHECK_THAT(err(View({2, 2}), {4, 6}, {0, 4}), StatusIs(StatusCode::kInvalidArgument, "must be 1-D with 4 elements"));
    CHECK_THAT(err(View({4}), {4, -6}, {0, 4}), StatusIs(StatusCode::kInvalidArgument, "has a negative extent"));
    CHECK_THAT(err(View({4}), {4, 6}, {0, 4}, {{2, 0, 2}}), StatusIs(StatusCode::kInvalidArgument, "axis 2 is out of range"));
  }
}

}  // namespace
}  // namespace dcp
