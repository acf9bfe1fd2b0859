// Copyright (c) dcp authors.
// Tests of engine/sharding/validation.cc: local and global validation of sharded state.

#include "engine/sharding/validation.h"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/state_dict.h"
#include "dcp/tensor_view.h"
#include "engine/sharding/flatten.h"
#include "tests/testing/status_matchers.h"

namespace dcp::sharding {
namespace {

using dcp::testing::StatusIs;
using manifest::ObjectDecl;
using manifest::RankDecl;
using manifest::ShardDecl;

// Backing memory for the views (validation never reads it).
alignas(8) char g_data[1 << 16];

Box B(Shape origin, Shape shape) { return Box{std::move(origin), std::move(shape)}; }

// A float32 shard of `local` at `offset` in `global`, with a matching view.
ShardedTensor Shard(std::string key, Shape local, Shape global, Shape offset, ReplicaId replica = {}) {
  ShardedTensor t;
  t.key = std::move(key);
  t.dtype = DType::kFloat32;
  t.data = TensorView(g_data, DType::kFloat32, local);
  t.local_shape = std::move(local);
  t.global_shape = std::move(global);
  t.global_offset = std::move(offset);
  t.replica_id = std::move(replica);
  return t;
}

ShardedObject Obj(std::string key, Shape grid, Shape offset, ReplicaId replica = {}) {
  ShardedObject o;
  o.key = std::move(key);
  o.data = "payload";
  o.global_shape = std::move(grid);
  o.global_offset = std::move(offset);
  o.replica_id = std::move(replica);
  return o;
}

// Flattens and validates `sd` as a save, and as a load request.
Status SaveCheck(const StateDict& sd) {
  FlatState flat;
  DCP_RETURN_IF_ERROR(FlattenForSave(sd, &flat));
  return ValidateLocalSave(flat);
}
Status LoadCheck(StateDict sd) {
  FlatRequest req;
  DCP_RETURN_IF_ERROR(FlattenForLoad(&sd, &req));
  return ValidateLocalLoad(req);
}

// InvalidArgument, with every fragment in the message, at save and at load.
void RequireInvalid(const StateDict& sd, std::initializer_list<std::string> fragments) {
  for (const Status& s : {SaveCheck(sd), LoadCheck(sd)}) {
    INFO(s.ToString());
    REQUIRE(s.code() == StatusCode::kInvalidArgument);
    for (const std::string& f : fragments) CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument, f));
  }
}

StateDict One(ShardedTensor t, std::string path = "w") {
  StateDict sd;
  sd.Child("model").Add(std::move(path), std::move(t));
  return sd;
}

TEST_CASE("Well-formed local state passes", "[sharding][validation]") {
  StateDict sd;
  sd.Add("a", Shard("w", {2, 4}, {4, 8}, {2, 4}));
  sd.Add("b", Shard("w", {2, 4}, {4, 8}, {0, 4}));  // same key, another offset
  sd.Add("c", Shard("scalar", {}, {}, {}));
  sd.Add("d", Shard("empty", {0, 4}, {0, 8}, {0, 4}));
  sd.Add("e", Shard("empty_at_edge", {0, 3}, {5, 3}, {5, 0}));
  ShardedTensor stacked = Shard("layers", {2, 4}, {6, 2, 4}, {3, 0, 0});
  stacked.prepend_axis_num = 1;
  sd.Add("f", stacked);
  sd.Add("g", Obj("rng", {2, 2}, {1, 0}));
  sd.Add("h", Obj("rng", {2, 2}, {1, 1}));
  sd.Add("i", Obj("scalar_obj", {}, {}));
  CHECK_OK(SaveCheck(sd));
  CHECK_OK(LoadCheck(sd));
}

TEST_CASE("Tensor leaf errors name the path, the key and the offset", "[sharding][validation]") {
  SECTION("view dtype differs from the declared dtype") {
    ShardedTensor t = Shard("dec.w", {2, 4}, {4, 4}, {2, 0});
    t.data = TensorView(g_data, DType::kBFloat16, {2, 4});
    RequireInvalid(One(t), {"state dict entry 'model.w' (key 'dec.w' at offset (2, 0)): view dtype bfloat16 "
                            "differs from declared dtype float32"});
  }
  SECTION("view shape differs from local_shape") {
    ShardedTensor t = Shard("dec.w", {2, 4}, {4, 4}, {2, 0});
    t.data = TensorView(g_data, DType::kFloat32, {4, 2});
    RequireInvalid(One(t), {"key 'dec.w'", "offset (2, 0)",
                            "view shape (4, 2) differs from declared local shape (2, 4)"});
  }
  SECTION("offset outside the global shape") {
    RequireInvalid(One(Shard("dec.w", {2, 4}, {4, 4}, {3, 0})),
                   {"key 'dec.w'", "region [3:5, 0:4] at offset (3, 0) lies outside global shape (4, 4)"});
  }
  SECTION("shard reaching past the global shape") {
    RequireInvalid(One(Shard("dec.w", {2, 8}, {4, 4}, {0, 0})),
                   {"key 'dec.w'", "region [0:2, 0:8] at offset (0, 0) lies outside global shape (4, 4)"});
  }
  SECTION("negative offset") {
    RequireInvalid(One(Shard("dec.w", {2, 4}, {4, 4}, {-1, 0})),
                   {"key 'dec.w'", "at offset (-1, 0) lies outside global shape (4, 4)"});
  }
  SECTION("global shape rank differs") {
    RequireInvalid(One(Shard("dec.w", {2, 4}, {4, 4, 1}, {0, 0})),
                   {"key 'dec.w'", "offset (0, 0)",
                    "global shape (4, 4, 1) and global offset (0, 0) must have 2 axes (local shape (2, 4) plus 0 "
                    "prepended)"});
  }
  SECTION("offset rank differs") {
    RequireInvalid(One(Shard("dec.w", {2, 4}, {4, 4}, {0})),
                   {"key 'dec.w'", "global offset (0,) must have 2 axes"});
  }
  SECTION("prepended axes missing from the global shape") {
    ShardedTensor t = Shard("layers", {2, 4}, {2, 4}, {0, 0});
    t.prepend_axis_num = 1;
    RequireInvalid(One(t), {"key 'layers'", "offset (0, 0)", "must have 3 axes (local shape (2, 4) plus 1 prepended)"});
  }
  SECTION("negative prepend_axis_num") {
    ShardedTensor t = Shard("layers", {2, 4}, {2, 4}, {0, 0});
    t.prepend_axis_num = -1;
    RequireInvalid(One(t), {"key 'layers'", "offset (0, 0)", "prepend_axis_num is negative"});
  }
  SECTION("negative global extent") {
    RequireInvalid(One(Shard("dec.w", {0, 4}, {-1, 4}, {0, 0})),
                   {"key 'dec.w'", "offset (0, 0)", "global shape (-1, 4) has a negative extent"});
  }
  SECTION("malformed key") {
    RequireInvalid(One(Shard("", {2}, {2}, {0})), {"'model.w'", "empty key"});
    RequireInvalid(One(Shard(std::string("a\nb"), {2}, {2}, {0})), {"'model.w'", "control byte"});
  }
  SECTION("malformed view") {
    ShardedTensor t = Shard("dec.w", {2, 4}, {4, 4}, {0, 0});
    t.data = TensorView(g_data, DType::kFloat32, {2, 4}, {4});  // one stride for two axes
    RequireInvalid(One(t), {"key 'dec.w'", "offset (0, 0)", "view has 1 strides for 2 axes"});
    t.data = TensorView(static_cast<void*>(nullptr), DType::kFloat32, {2, 4});
    RequireInvalid(One(t), {"key 'dec.w'", "null data pointer"});
  }
  SECTION("device memory") {
    ShardedTensor t = Shard("dec.w", {2, 4}, {4, 4}, {0, 0});
    t.data = TensorView(g_data, DType::kFloat32, {2, 4}, {}, Device::Cuda(1));
    RequireInvalid(One(t), {"key 'dec.w'", "offset (0, 0)", "view is on cuda:1"});
  }
  SECTION("invalid declared dtype") {
    ShardedTensor t = Shard("dec.w", {2, 4}, {4, 4}, {0, 0});
    t.dtype = static_cast<DType>(99);
    RequireInvalid(One(t), {"key 'dec.w'", "offset (0, 0)", "invalid declared dtype"});
  }
}

TEST_CASE("Duplicates on one rank", "[sharding][validation]") {
  SECTION("the same (key, offset) twice") {
    StateDict sd;
    sd.Add("a", Shard("w", {2, 4}, {4, 4}, {2, 0}));
    sd.Child("opt").Add("b", Shard("w", {2, 4}, {4, 4}, {2, 0}));
    CHECK_THAT(SaveCheck(sd), StatusIs(StatusCode::kInvalidArgument,
                                       "key 'w' at offset (2, 0) appears twice on this rank (entries 'a' and 'opt.b')"));
    // A load may fill the same region into two destinations.
    CHECK_OK(LoadCheck(sd));
  }
  SECTION("empty shards may share an offset") {
    StateDict sd;
    sd.Add("a", Shard("v", {0}, {9}, {3}));
    sd.Add("b", Shard("v", {4}, {9}, {3}));
    sd.Add("c", Shard("v", {0}, {9}, {3}));
    ShardedTensor f = Shard("f", {2, 3}, {2, 3}, {0, 0});
    f.data = TensorView(g_data, DType::kFloat32, {0});
    f.flattened_range = FlatRange{2, 2};
    sd.Add("d", f);
    f.flattened_range = FlatRange{4, 4};
    sd.Add("e", f);
    CHECK_OK(SaveCheck(sd));
  }
  SECTION("the same state dict key twice") {
    StateDict sd;
    sd.Child("model").Add("w", Shard("w1", {2}, {2}, {0})).Add("w", Shard("w2", {2}, {2}, {0}));
    CHECK_THAT(SaveCheck(sd), StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'model.w'"));
    CHECK_THAT(LoadCheck(sd), StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'model.w'"));
  }
  SECTION("the same object cell twice") {
    StateDict sd;
    sd.Add("a", Obj("rng", {4}, {1}));
    sd.Add("b", Obj("rng", {4}, {1}, {0, 1}));  // replicas too: one cell per rank
    CHECK_THAT(SaveCheck(sd), StatusIs(StatusCode::kInvalidArgument,
                                       "object 'rng/shard_1_4' appears twice on this rank (entries 'a' and 'b')"));
    CHECK_OK(LoadCheck(sd));
  }
}

TEST_CASE("A load's destination may not share memory between elements; a save's source may", "[sharding][validation]") {
  // An expand()ed view: rows of 4 elements that are one element each.
  ShardedTensor t = Shard("w", {3, 4}, {3, 4}, {0, 0});
  t.data = TensorView(g_data, DType::kFloat32, {3, 4}, {1, 0});
  CHECK(t.data.SharedAxis() == 1);
  CHECK_OK(SaveCheck(One(t)));
  CHECK_THAT(LoadCheck(One(t)),
             StatusIs(StatusCode::kInvalidArgument, "state dict entry 'model.w' (key 'w' at offset (0, 0)): the "
                                                    "destination view has stride 0 on axis 1 of extent 4"));
  // Stride 0 on an axis of one element, or on an empty view, shares nothing.
  t = Shard("w", {3, 1}, {3, 1}, {0, 0});
  t.data = TensorView(g_data, DType::kFloat32, {3, 1}, {1, 0});
  CHECK(t.data.SharedAxis() == -1);
  CHECK_OK(LoadCheck(One(t)));
  t = Shard("w", {0, 4}, {3, 4}, {0, 0});
  t.data = TensorView(g_data, DType::kFloat32, {0, 4}, {0, 0});
  CHECK(t.data.SharedAxis() == -1);
  CHECK_OK(LoadCheck(One(t)));
  // A flat shard's 1-D view too.
  t = Shard("f", {2, 3}, {2, 3}, {0, 0});
  t.data = TensorView(g_data, DType::kFloat32, {2}, {0});
  t.flattened_range = FlatRange{1, 3};
  CHECK_OK(SaveCheck(One(t)));
  CHECK_THAT(LoadCheck(One(t)), StatusIs(StatusCode::kInvalidArgument, "stride 0 on axis 0 of extent 2"));
}

TEST_CASE("Object leaf errors", "[sharding][validation]") {
  auto one = [](ShardedObject o) {
    StateDict sd;
    sd.Add("state", std::move(o));
    return sd;
  };
  RequireInvalid(one(Obj("rng", {2, 2}, {2, 0})),
                 {"'state'", "object 'rng'", "offset (2, 0) lies outside grid (2, 2)"});
  RequireInvalid(one(Obj("rng", {2, 2}, {0, -1})), {"object 'rng'", "offset (0, -1) lies outside grid (2, 2)"});
  RequireInvalid(one(Obj("rng", {2, 2}, {0})),
                 {"object 'rng'", "global shape (2, 2) and global offset (0,) have different ranks"});
  RequireInvalid(one(Obj("", {1}, {0})), {"state dict entry 'state' (object '' at offset (0,)): empty key"});
}

// --- Global validation ----------------------------------------------------

ShardDecl Decl(std::string key, Shape global, Box box, bool main = true, DType dtype = DType::kFloat32) {
  return ShardDecl{std::move(key), dtype, std::move(global), std::move(box), main};
}

// A 2x2 grid of 4x4 blocks of an 8x8 tensor, one block per rank.
std::vector<RankDecl> Grid2x2(const std::string& key = "w") {
  std::vector<RankDecl> decls(4);
  for (int r = 0; r < 4; ++r) decls[r].tensors.push_back(Decl(key, {8, 8}, B({(r / 2) * 4, (r % 2) * 4}, {4, 4})));
  return decls;
}

TEST_CASE("ValidateGlobal accepts exact covers and returns sorted entries", "[sharding][validation]") {
  std::vector<RankDecl> decls = Grid2x2("w");
  decls[0].tensors.push_back(Decl("b", {8}, B({0}, {8}), true, DType::kBFloat16));
  decls[1].tensors.push_back(Decl("b", {8}, B({0}, {8}), false, DType::kBFloat16));  // a replica
  decls[2].tensors.push_back(Decl("scalar", {}, B({}, {})));
  decls[3].tensors.push_back(Decl("empty", {0, 3}, B({0, 0}, {0, 3})));
  decls[3].tensors.push_back(Decl("a", {10}, B({3}, {7})));
  decls[1].tensors.push_back(Decl("a", {10}, B({0}, {3})));
  const std::vector<manifest::TensorEntry> entries = ValueOrDie(ValidateGlobal(decls));
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].key == "a");
  CHECK(entries[1].key == "b");
  CHECK(entries[1].dtype == DType::kBFloat16);
  CHECK(entries[1].global_shape == Shape{8});
  CHECK(entries[2].key == "empty");
  CHECK(entries[3].key == "scalar");
  CHECK(entries[3].global_shape.empty());
  CHECK(entries[4].key == "w");
  CHECK(entries[4].dtype == DType::kFloat32);
  CHECK(entries[4].global_shape == Shape{8, 8});
  for (const auto& e : entries) CHECK(e.chunks.empty());

  CHECK(ValueOrDie(ValidateGlobal(std::vector<RankDecl>{})).empty());
}

TEST_CASE("ValidateGlobal: ranks disagree on dtype or global shape", "[sharding][validation]") {
  SECTION("dtype") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[2].tensors[0].dtype = DType::kBFloat16;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': rank 0 declares float32 (8, 8) but rank 2 declares bfloat16 (8, 8)"));
  }
  SECTION("global shape") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[3].tensors[0].global_shape = {8, 9};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': rank 0 declares float32 (8, 8) but rank 3 declares float32 (8, 9)"));
  }
  SECTION("a replica disagrees too") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[1].tensors.push_back(Decl("w", {8}, B({0}, {8}), false));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "but rank 1 declares float32 (8,)"));
  }
}

TEST_CASE("ValidateGlobal: overlapping main replicas", "[sharding][validation]") {
  SECTION("on two ranks") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[3].tensors[0].box = B({2, 2}, {6, 6});  // reaches into every other block
    const Status s = ValidateGlobal(decls).status();
    INFO(s.ToString());
    CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument, "key 'w': main replicas on ranks "));
    CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument, " and 3 overlap at "));
  }
  SECTION("the exact region and offsets") {
    std::vector<RankDecl> decls(2);
    decls[0].tensors.push_back(Decl("w", {10}, B({0}, {6})));
    decls[1].tensors.push_back(Decl("w", {10}, B({4}, {6})));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': main replicas on ranks 0 and 1 overlap at [4:6] (offsets (0,) and (4,))"));
  }
  SECTION("on one rank") {
    std::vector<RankDecl> decls(2);
    decls[0].tensors.push_back(Decl("w", {4, 4}, B({0, 0}, {4, 4})));
    decls[1].tensors.push_back(Decl("w", {4, 4}, B({0, 0}, {2, 4})));
    decls[1].tensors.push_back(Decl("w", {4, 4}, B({1, 0}, {2, 4})));
    decls[0].tensors[0].main_replica = false;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': main replicas on rank 1 overlap at [1:2, 0:4] (offsets (0, 0) and (1, 0))"));
  }
  SECTION("two ranks both claim a whole 0-d tensor") {
    std::vector<RankDecl> decls(3);
    decls[1].tensors.push_back(Decl("step", {}, B({}, {})));
    decls[2].tensors.push_back(Decl("step", {}, B({}, {})));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'step': main replicas on ranks 1 and 2 overlap at []"));
  }
}

TEST_CASE("ValidateGlobal: holes in coverage", "[sharding][validation]") {
  SECTION("a missing block") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[3].tensors.clear();
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': main replicas leave 16 of 64 elements uncovered (a hole in coverage at [4:8, 4:8])"));
  }
  SECTION("replicas do not fill holes") {
    std::vector<RankDecl> decls = Grid2x2();
    decls[3].tensors[0].main_replica = false;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "main replicas leave 16 of 64 elements uncovered"));
  }
  SECTION("only replicas") {
    std::vector<RankDecl> decls(2);
    decls[0].tensors.push_back(Decl("w", {5}, B({0}, {5}), false));
    decls[1].tensors.push_back(Decl("w", {5}, B({0}, {5}), false));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': main replicas leave 5 of 5 elements uncovered (a hole in coverage at [0:5])"));
  }
  SECTION("a 0-d tensor without a main replica") {
    std::vector<RankDecl> decls(1);
    decls[0].tensors.push_back(Decl("step", {}, B({}, {}), false));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'step': main replicas leave 1 of 1 elements uncovered (a hole in coverage at [])"));
  }
  SECTION("an irregular layout too big for the cut grid: hole counted, not located") {
    // Rows cut at staggered columns, one rank per row.
    const int64_t rows = 1000, width = 2048;
    std::vector<RankDecl> decls(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t c = 1 + (r * 613) % (width - 1);
      decls[r].tensors.push_back(Decl("w", {rows, width}, B({r, 0}, {1, c})));
      decls[r].tensors.push_back(Decl("w", {rows, width}, B({r, c}, {1, width - c})));
    }
    CHECK(ValueOrDie(ValidateGlobal(decls)).size() == 1);
    decls[500].tensors[1].box.shape[1] -= 2;
    const Status s = ValidateGlobal(decls).status();
    CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument,
                           "key 'w': main replicas leave 2 of 2048000 elements uncovered (a hole in coverage)"));
    decls[500].tensors[1].box.shape[1] += 2;
    // Rank 500's right box now starts one column early: an overlap the sweep finds.
    const int64_t c = decls[500].tensors[1].box.origin[1];
    decls[500].tensors[1].box.origin[1] -= 1;
    decls[500].tensors[1].box.shape[1] += 1;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'w': main replicas on rank 500 overlap at [500:501, " +
                                                          std::to_string(c - 1) + ":" + std::to_string(c) + "]"));
  }
}

TEST_CASE("ValidateGlobal: replicas are checked for consistency but not coverage", "[sharding][validation]") {
  std::vector<RankDecl> decls = Grid2x2();
  // Data-parallel copies overlap the main replicas and each other: fine.
  for (int r = 0; r < 4; ++r) decls[r].tensors.push_back(Decl("w", {8, 8}, B({0, 0}, {8, 8}), false));
  CHECK(ValueOrDie(ValidateGlobal(decls)).size() == 1);
  // But a replica outside the tensor is refused.
  decls[2].tensors.push_back(Decl("w", {8, 8}, B({6, 6}, {4, 4}), false));
  CHECK_THAT(ValidateGlobal(decls).status(),
             StatusIs(StatusCode::kInvalidArgument, "key 'w': rank 2 declares region [6:10, 6:10] outside (8, 8)"));
}

TEST_CASE("ValidateGlobal: objects", "[sharding][validation]") {
  auto grid = [] {
    std::vector<RankDecl> decls(4);
    for (int r = 0; r < 4; ++r) decls[r].objects.push_back(ObjectDecl{"rng", {2, 2}, {r / 2, r % 2}, true});
    return decls;
  };
  SECTION("every cell once, plus replicas") {
    std::vector<RankDecl> decls = grid();
    decls[0].objects.push_back(ObjectDecl{"rng", {2, 2}, {1, 1}, false});
    decls[1].objects.push_back(ObjectDecl{"sched", {}, {}, true});
    decls[2].objects.push_back(ObjectDecl{"sched", {}, {}, false});
    CHECK_OK(ValidateGlobal(decls).status());
  }
  SECTION("a missing cell") {
    std::vector<RankDecl> decls = grid();
    decls[2].objects.clear();
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "object 'rng': 1 of 4 cells of grid (2, 2) are missing"));
  }
  SECTION("a cell held only by replicas") {
    std::vector<RankDecl> decls = grid();
    decls[2].objects[0].main_replica = false;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "object 'rng' cell (1, 0) has no main replica"));
  }
  SECTION("two main replicas of one cell") {
    std::vector<RankDecl> decls = grid();
    decls[3].objects.push_back(ObjectDecl{"rng", {2, 2}, {0, 1}, true});
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "object 'rng' cell (0, 1) has main replicas on ranks 1 and 3"));
  }
  SECTION("ranks disagree on the grid") {
    std::vector<RankDecl> decls = grid();
    decls[1].objects[0].global_shape = {4};
    decls[1].objects[0].global_offset = {1};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "object 'rng': rank 0 declares grid (2, 2) but rank 1 declares (4,)"));
  }
  SECTION("a 0-d object nobody saves as main") {
    std::vector<RankDecl> decls(2);
    decls[0].objects.push_back(ObjectDecl{"sched", {}, {}, false});
    decls[1].objects.push_back(ObjectDecl{"sched", {}, {}, false});
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "object 'sched' cell () has no main replica"));
  }
}

TEST_CASE("DeclareState describes the rank's leaves", "[sharding][validation]") {
  StateDict sd;
  ShardedTensor stacked = Shard("layers", {2, 4}, {6, 2, 8}, {3, 0, 4}, {0, 1});
  stacked.prepend_axis_num = 1;
  sd.Add("layers", stacked);
  sd.Add("w", Shard("w", {4}, {8}, {4}));
  sd.Add("rng", Obj("rng", {4}, {2}, {1}));
  FlatState flat;
  REQUIRE_OK(FlattenForSave(sd, &flat));
  REQUIRE_OK(ValidateLocalSave(flat));
  const codec::Hash128 hash{7, 9};
  const RankDecl d = DeclareState(flat, hash);
  CHECK(d.common_state_hash == hash);
  REQUIRE(d.tensors.size() == 2);
  CHECK(d.tensors[0].key == "layers");
  CHECK(d.tensors[0].dtype == DType::kFloat32);
  CHECK(d.tensors[0].global_shape == Shape{6, 2, 8});
  CHECK(d.tensors[0].box == B({3, 0, 4}, {1, 2, 4}));
  CHECK_FALSE(d.tensors[0].main_replica);
  CHECK(d.tensors[1].box == B({4}, {4}));
  CHECK(d.tensors[1].main_replica);
  REQUIRE(d.objects.size() == 1);
  CHECK(d.objects[0].key == "rng");
  CHECK(d.objects[0].global_shape == Shape{4});
  CHECK(d.objects[0].global_offset == Shape{2});
  CHECK_FALSE(d.objects[0].main_replica);
}

// --- Flattened ranges ------------------------------------------------------

// A flat float32 shard: elements [begin, end) of the flattening of `local`.
ShardedTensor FlatShard(std::string key, Shape local, Shape global, Shape offset, FlatRange r, ReplicaId replica = {}) {
  ShardedTensor t = Shard(std::move(key), std::move(local), std::move(global), std::move(offset), std::move(replica));
  t.data = TensorView(g_data, DType::kFloat32, {r.size()});
  t.flattened_range = r;
  return t;
}

TEST_CASE("Flat shards: local validation", "[sharding][validation][flat]") {
  SECTION("well formed, including empty and full ranges and a strided view") {
    StateDict sd;
    sd.Add("a", FlatShard("w", {4, 6}, {8, 6}, {4, 0}, {0, 11}));
    sd.Add("b", FlatShard("w", {4, 6}, {8, 6}, {4, 0}, {11, 24}));  // same offset, another range
    sd.Add("c", FlatShard("w", {4, 6}, {8, 6}, {0, 0}, {24, 24}));
    ShardedTensor strided = FlatShard("v", {3}, {3}, {0}, {0, 3});
    strided.data = TensorView(g_data, DType::kFloat32, {3}, {2});
    sd.Add("d", strided);
    CHECK_OK(SaveCheck(sd));
    CHECK_OK(LoadCheck(sd));
  }
  SECTION("range outside the box") {
    RequireInvalid(One(FlatShard("dec.w", {4, 6}, {8, 6}, {4, 0}, {20, 25})),
                   {"state dict entry 'model.w' (key 'dec.w' at offset (4, 0)): flattened range [20, 25) is not "
                    "within [0, 24] of local shape (4, 6)"});
    ShardedTensor t = FlatShard("dec.w", {4, 6}, {8, 6}, {4, 0}, {0, 0});
    t.flattened_range = FlatRange{-1, 2};
    t.data = TensorView(g_data, DType::kFloat32, {3});
    RequireInvalid(One(t), {"flattened range [-1, 2) is not within [0, 24]"});
    t.flattened_range = FlatRange{5, 4};
    RequireInvalid(One(t), {"flattened range [5, 4) is not within [0, 24]"});
  }
  SECTION("view not 1-D of the range's length") {
    ShardedTensor t = FlatShard("dec.w", {4, 6}, {8, 6}, {4, 0}, {3, 9});
    t.data = TensorView(g_data, DType::kFloat32, {5});
    RequireInvalid(One(t), {"key 'dec.w'", "view shape (5,) must be 1-D with 6 elements for flattened range [3, 9)"});
    t.data = TensorView(g_data, DType::kFloat32, {2, 3});
    RequireInvalid(One(t), {"view shape (2, 3) must be 1-D with 6 elements"});
    t.data = TensorView(g_data, DType::kFloat32, {4, 6});  // the non-flat box is not the slice
    RequireInvalid(One(t), {"view shape (4, 6) must be 1-D"});
  }
  SECTION("negative local extent") {
    ShardedTensor t = FlatShard("dec.w", {4, -6}, {8, 6}, {4, 0}, {0, 0});
    RequireInvalid(One(t), {"key 'dec.w'", "local shape (4, -6) has a negative extent"});
  }
  SECTION("the same range twice on one rank") {
    StateDict sd;
    sd.Add("a", FlatShard("w", {4, 6}, {8, 6}, {4, 0}, {0, 11}));
    sd.Add("b", FlatShard("w", {4, 6}, {8, 6}, {4, 0}, {0, 11}));
    CHECK_THAT(SaveCheck(sd),
               StatusIs(StatusCode::kInvalidArgument, "key 'w' at offset (4, 0) with flattened range [0, 11) appears "
                                                      "twice on this rank (entries 'a' and 'b')"));
    CHECK_OK(LoadCheck(sd));
  }
}

ShardDecl FlatDecl(std::string key, Shape global, Box box, FlatRange r, bool main = true) {
  ShardDecl d = Decl(std::move(key), std::move(global), std::move(box), main);
  d.flattened_range = r;
  return d;
}

// TP=2 along axis 0 of an (8, 6) tensor (boxes of 24 elements), each box
// sliced over DP=3 unevenly: [0, 7), [7, 16), [16, 24). Rank = tp * 3 + dp.
std::vector<RankDecl> FlatGrid() {
  const FlatRange dp[3] = {{0, 7}, {7, 16}, {16, 24}};
  std::vector<RankDecl> decls(6);
  for (int r = 0; r < 6; ++r) decls[r].tensors.push_back(FlatDecl("w", {8, 6}, B({(r / 3) * 4, 0}, {4, 6}), dp[r % 3]));
  return decls;
}

TEST_CASE("ValidateGlobal: flat ranges tiling each box are accepted", "[sharding][validation][flat]") {
  std::vector<RankDecl> decls = FlatGrid();
  CHECK(ValueOrDie(ValidateGlobal(decls)).size() == 1);
  // Empty ranges anywhere, and non-main replicas with any range, change nothing.
  decls[1].tensors.push_back(FlatDecl("w", {8, 6}, B({0, 0}, {4, 6}), {24, 24}));
  decls[5].tensors.push_back(FlatDecl("w", {8, 6}, B({4, 0}, {4, 6}), {3, 20}, false));
  CHECK(ValueOrDie(ValidateGlobal(decls)).size() == 1);
  // One box held whole by one rank, the other split: fine too.
  std::vector<RankDecl> mixed(3);
  mixed[0].tensors.push_back(FlatDecl("w", {8, 6}, B({0, 0}, {4, 6}), {0, 24}));
  mixed[1].tensors.push_back(FlatDecl("w", {8, 6}, B({4, 0}, {4, 6}), {0, 1}));
  mixed[2].tensors.push_back(FlatDecl("w", {8, 6}, B({4, 0}, {4, 6}), {1, 24}));
  CHECK(ValueOrDie(ValidateGlobal(mixed)).size() == 1);
}

TEST_CASE("ValidateGlobal: bad flat ranges", "[sharding][validation][flat]") {
  SECTION("overlapping ranges name both ranges and ranks") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[4].tensors[0].flattened_range = FlatRange{6, 16};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w' at offset (4, 0): flattened ranges [0, 7) (rank 3) and [6, 16) (rank 4) overlap"));
  }
  SECTION("a range inside another") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[0].tensors.push_back(FlatDecl("w", {8, 6}, B({0, 0}, {4, 6}), {20, 22}));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w' at offset (0, 0): flattened ranges [16, 24) (rank 2) and [20, 22) (rank 0) overlap"));
  }
  SECTION("a hole between ranges") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[1].tensors[0].flattened_range = FlatRange{8, 16};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w' at offset (0, 0): flattened ranges leave [7, 8) of [0, 24) uncovered"));
  }
  SECTION("a hole at the start and at the end") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[3].tensors[0].flattened_range = FlatRange{2, 7};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "at offset (4, 0): flattened ranges leave [0, 2) of [0, 24)"));
    decls = FlatGrid();
    decls[2].tensors[0].flattened_range = FlatRange{16, 23};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "at offset (0, 0): flattened ranges leave [23, 24) of [0, 24)"));
  }
  SECTION("a range held only by a non-main replica") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[5].tensors[0].main_replica = false;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "at offset (4, 0): flattened ranges leave [16, 24) of [0, 24)"));
  }
  SECTION("a box with no main replica is a hole in coverage") {
    std::vector<RankDecl> decls = FlatGrid();
    for (int r = 3; r < 6; ++r) decls[r].tensors[0].main_replica = false;
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'w': main replicas leave 24 of 48 elements uncovered"));
  }
  SECTION("mixing flat and non-flat shards of one key") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[4].tensors[0].flattened_range.reset();
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w' mixes flattened and non-flattened shards (ranks 0 and 4)"));
    decls = FlatGrid();
    decls[2].tensors.push_back(Decl("w", {8, 6}, B({0, 0}, {8, 6}), false));  // even a replica
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w' mixes flattened and non-flattened shards (ranks 0 and 2)"));
  }
  SECTION("flat shards at one offset disagree on the box") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[5].tensors[0].box.shape = {4, 5};
    decls[5].tensors[0].flattened_range = FlatRange{16, 20};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': flattened shards at offset (4, 0) declare regions of shape (4, 6) (rank 3) and "
                        "(4, 5) (rank 5)"));
  }
  SECTION("boxes of different offsets overlap") {
    std::vector<RankDecl> decls = FlatGrid();
    decls.resize(9);
    for (int r = 6; r < 9; ++r) decls[r].tensors.push_back(FlatDecl("w", {8, 6}, B({2, 0}, {4, 6}), FlatGrid()[r - 6].tensors[0].flattened_range.value()));
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'w': main replicas on ranks 0 and 6 overlap at [2:4, 0:6]"));
  }
  SECTION("a declared range outside its box (a peer's bug)") {
    std::vector<RankDecl> decls = FlatGrid();
    decls[2].tensors[0].flattened_range = FlatRange{16, 25};
    CHECK_THAT(ValidateGlobal(decls).status(),
               StatusIs(StatusCode::kInvalidArgument,
                        "key 'w': rank 2 declares flattened range [16, 25) outside region [0:4, 0:6]"));
  }
}

TEST_CASE("ValidateGlobal: many flat ranges stay fast", "[sharding][validation][flat]") {
  // 4096 DP ranks slicing one box of 10^6 elements: sorted, not compared in pairs.
  const int ranks = 4096;
  const int64_t numel = 1000000;
  std::vector<RankDecl> decls(ranks);
  for (int r = 0; r < ranks; ++r) {
    const FlatRange range{numel * r / ranks, numel * (r + 1) / ranks};
    decls[static_cast<size_t>((r * 7) % ranks)].tensors.push_back(FlatDecl("w", {1000, 1000}, B({0, 0}, {1000, 1000}), range));
  }
  CHECK(ValueOrDie(ValidateGlobal(decls)).size() == 1);
  decls[9].tensors[0].flattened_range->end += 1;
  CHECK_THAT(ValidateGlobal(decls).status(), StatusIs(StatusCode::kInvalidArgument, "overlap"));
}

TEST_CASE("DeclareState carries the flattened range", "[sharding][validation][flat]") {
  StateDict sd;
  sd.Add("a", FlatShard("w", {4, 6}, {8, 6}, {4, 0}, {5, 12}, {0, 0, 2}));
  sd.Add("b", Shard("v", {4}, {8}, {4}));
  FlatState flat;
  REQUIRE_OK(FlattenForSave(sd, &flat));
  const RankDecl d = DeclareState(flat, {});
  REQUIRE(d.tensors.size() == 2);
  CHECK(d.tensors[0].box == B({4, 0}, {4, 6}));
  REQUIRE(d.tensors[0].flattened_range.has_value());
  CHECK(*d.tensors[0].flattened_range == FlatRange{5, 12});
  CHECK_FALSE(d.tensors[0].main_replica);
  CHECK_FALSE(d.tensors[1].flattened_range.has_value());
}

// What every rank holds after the compact exchange of `decls`
// (manifest/exchange_codec.h).
manifest::GlobalDecls CompactExchange(const std::vector<RankDecl>& decls) {
  std::vector<manifest::SplitDecl> splits;
  std::vector<manifest::ReplicaSignature> signatures;
  for (const RankDecl& d : decls) {
    splits.push_back(manifest::SplitRankDecl(d));
    signatures.push_back(splits.back().signature);
  }
  const std::vector<int> rep = manifest::Representatives(signatures);
  std::vector<std::string> messages;
  for (size_t r = 0; r < decls.size(); ++r) {
    messages.push_back(manifest::EncodeExchangeDecl(splits[r], rep[r] == static_cast<int>(r)));
  }
  return ValueOrDie(manifest::AssembleGlobalDecls(signatures, messages));
}

TEST_CASE("ValidateGlobal on the compact exchange: the verdict of the plain one, checked once per set",
          "[sharding][validation]") {
  std::mt19937 rng(29);
  int failures = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const int ranks = std::uniform_int_distribution<int>(1, 7)(rng);
    std::vector<RankDecl> decls(static_cast<size_t>(ranks));
    for (const std::string key : {"a", "b"}) {
      // Main pieces of [0, 12) on random ranks; replicas on others.
      int64_t at = 0;
      while (at < 12) {
        const int64_t len = std::uniform_int_distribution<int64_t>(1, 12 - at)(rng);
        const int main = std::uniform_int_distribution<int>(0, ranks - 1)(rng);
        decls[main].tensors.push_back(Decl(key, {12}, B({at}, {len})));
        for (int r = 0; r < ranks; ++r) {
          if (r != main && std::bernoulli_distribution(0.4)(rng)) {
            decls[r].tensors.push_back(Decl(key, {12}, B({at}, {len}), false));
          }
        }
        at += len;
      }
    }
    // Data parallel: some ranks replicate another's replicas exactly.
    for (int r = 1; r < ranks; ++r) {
      if (std::bernoulli_distribution(0.4)(rng)) {
        std::vector<ShardDecl> mains;
        for (const ShardDecl& t : decls[r].tensors) {
          if (t.main_replica) mains.push_back(t);
        }
        for (const ShardDecl& t : decls[r - 1].tensors) {
          if (!t.main_replica) mains.push_back(t);
        }
        decls[r].tensors = mains;
      }
    }
    // Faults, in replicas or mains.
    const int r = std::uniform_int_distribution<int>(0, ranks - 1)(rng);
    auto& shards = decls[r].tensors;
    if (!shards.empty()) {
      ShardDecl& t = shards[std::uniform_int_distribution<size_t>(0, shards.size() - 1)(rng)];
      switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
        case 0: t.dtype = DType::kBFloat16; break;
        case 1: t.global_shape = {13}; break;
        case 2: t.box.origin[0] = std::max<int64_t>(0, t.box.origin[0] - 1); break;  // overlap or hole
        case 3: t.main_replica = !t.main_replica; break;
        case 4: t.flattened_range = FlatRange{0, t.box.num_elements()}; break;  // mixes flat and not
        default: break;
      }
    }
    INFO("iteration " << iter);
    const manifest::GlobalDecls g = CompactExchange(decls);
    const auto compact = ValidateGlobal(g);
    const auto expanded = ValidateGlobal(manifest::ExpandGlobalDecls(g));
    const auto plain = ValidateGlobal(decls);
    REQUIRE(compact.ok() == plain.ok());
    REQUIRE(compact.status().code() == expanded.status().code());
    CHECK(compact.status().message() == expanded.status().message());
    if (!compact.ok()) {
      ++failures;
      CHECK(compact.status().code() == plain.status().code());
      continue;
    }
    REQUIRE(compact->size() == plain->size());
    for (size_t i = 0; i < compact->size(); ++i) CHECK((*compact)[i].key == (*plain)[i].key);
  }
  CHECK(failures > 30);   // the faults were caught
  CHECK(failures < 270);  // and clean configurations passed
}

TEST_CASE("ValidateGlobal on the compact exchange names the lowest rank of a bad replica set",
          "[sharding][validation]") {
  std::vector<RankDecl> decls(4);
  decls[0].tensors = {Decl("w", {8}, B({0}, {8}))};
  for (int r = 1; r < 4; ++r) decls[r].tensors = {Decl("w", {8}, B({0}, {8}), false, DType::kBFloat16)};
  CHECK_THAT(ValidateGlobal(CompactExchange(decls)).status(),
             StatusIs(StatusCode::kInvalidArgument,
                      "key 'w': rank 0 declares float32 (8,) but rank 1 declares bfloat16 (8,)"));
}

}  // namespace
}  // namespace dcp::sharding
