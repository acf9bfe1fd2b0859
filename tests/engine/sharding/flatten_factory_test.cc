// Copyright (c) dcp authors.
// Tests of the factory part of engine/sharding/flatten.cc: builds at save and
// load, the pieces' paths, who owns them, merges, and expansion for snapshots.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dcp/factory.h"
#include "dcp/state_dict.h"
#include "engine/sharding/flatten.h"
#include "tests/testing/status_matchers.h"

namespace dcp::sharding {
namespace {

using dcp::testing::StatusIs;

// A factory whose pieces are an owned copy "copy" (in a nested dict "inner")
// and a view "view" of its data; it records the phases it was built in and
// its merge copies "copy" back into the data.
struct Recorder {
  std::vector<FactoryPhase> phases;
  int merges = 0;
};

ShardedTensorFactory CopyFactory(const std::string& key, float* data, Recorder* rec) {
  ShardedTensorFactory f;
  f.key = key;
  f.data = TensorView(data, DType::kFloat32, {4});
  f.replica_id = {0, 1};
  f.build = [rec](const ShardedTensorFactory& self, FactoryPhase phase, FactoryArena* arena, StateDict* pieces) {
    rec->phases.push_back(phase);
    TensorView copy = arena->Allocate(DType::kFloat32, {2});
    if (phase == FactoryPhase::kSave) {
      for (int i = 0; i < 2; ++i) static_cast<float*>(copy.data())[i] = static_cast<float*>(self.data.data())[i];
    }
    ShardedTensor a = ShardedTensor::Whole(self.key + ".a", copy);
    a.replica_id = self.replica_id;
    pieces->Child("inner").Add("copy", a);
    pieces->Add("view", ShardedTensor::Whole(self.key + ".b", self.data.Slice(Box{{2}, {2}})));
    return Status::OK();
  };
  f.merge = [rec](const ShardedTensorFactory& self, const StateDict& loaded) {
    const StateDict& inner = loaded.dict(loaded.Find("inner"));
    const float* src = static_cast<const float*>(inner.tensor(inner.Find("copy")).data.data());
    for (int i = 0; i < 2; ++i) static_cast<float*>(self.data.data())[i] = src[i];
    ++rec->merges;
    return Status::OK();
  };
  return f;
}

TEST_CASE("FlattenForSave builds factories into leaves at the factory's path", "[sharding][flatten][factory]") {
  float data[4] = {1, 2, 3, 4};
  Recorder rec;
  StateDict sd;
  sd.Child("model").Add("emb", CopyFactory("emb", data, &rec)).Add("lr", Value(0.5));
  FlatState flat;
  REQUIRE_OK(FlattenForSave(sd, &flat));
  REQUIRE(rec.phases == std::vector<FactoryPhase>{FactoryPhase::kSave});
  REQUIRE(flat.tensors.size() == 2);
  CHECK(flat.tensors[0].path == "model.emb.inner.copy");
  CHECK(flat.tensors[0].item->key == "emb.a");
  CHECK(flat.tensors[0].item->replica_id == ReplicaId{0, 1});
  CHECK(static_cast<const float*>(flat.tensors[0].item->data.data())[1] == 2.0f);
  CHECK(flat.tensors[1].path == "model.emb.view");
  CHECK(flat.tensors[1].item->data.data() == data + 2);
  // The flat state owns the pieces and the buffer.
  REQUIRE(flat.factories.size() == 1);
  CHECK(flat.factories[0]->path == "model.emb");
  CHECK(flat.factories[0]->arena.bytes() == 8);
  CHECK(flat.factories[0]->factory == &sd.dict(0).factory(0));
  // Common state: the value only.
  CHECK(flat.common.Find("model")->size() == 1);
}

TEST_CASE("FlattenForLoad builds in the load phase; merges run in order after", "[sharding][flatten][factory]") {
  float a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
  Recorder rec_a, rec_b;
  StateDict sd;
  sd.Add("a", CopyFactory("a", a, &rec_a));
  sd.Child("d").Add("b", CopyFactory("b", b, &rec_b));
  FlatRequest req;
  REQUIRE_OK(FlattenForLoad(&sd, &req));
  CHECK(rec_a.phases == std::vector<FactoryPhase>{FactoryPhase::kLoad});
  REQUIRE(req.tensors.size() == 4);
  CHECK(req.tensors[0].path == "a.inner.copy");
  CHECK(req.tensors[3].path == "d.b.view");
  // "Load" the pieces.
  static_cast<float*>(req.tensors[0].item->data.data())[0] = 7;
  static_cast<float*>(req.tensors[2].item->data.data())[1] = 9;
  REQUIRE_OK(ApplyFactoryMerges(req));
  CHECK(a[0] == 7);
  CHECK(b[1] == 9);
  CHECK(rec_a.merges == 1);
  CHECK(rec_b.merges == 1);
}

TEST_CASE("ApplyFactoryMerges skips factories without a merge and stops at an error",
          "[sharding][flatten][factory]") {
  float a[4] = {}, b[4] = {}, c[4] = {};
  Recorder ra, rb, rc;
  StateDict sd;
  ShardedTensorFactory no_merge = CopyFactory("a", a, &ra);
  no_merge.merge = nullptr;
  sd.Add("a", no_merge);
  ShardedTensorFactory failing = CopyFactory("b", b, &rb);
  failing.merge = [](const ShardedTensorFactory& self, const StateDict&) {
    return Status::InvalidArgument("factory '" + self.key + "' got nothing it wanted");
  };
  sd.Child("x").Add("b", failing);
  sd.Add("c", CopyFactory("c", c, &rc));
  FlatRequest req;
  REQUIRE_OK(FlattenForLoad(&sd, &req));
  CHECK_THAT(ApplyFactoryMerges(req),
             StatusIs(StatusCode::kInvalidArgument,
                      "state dict entry 'x.b' (factory 'b'): factory 'b' got nothing it wanted"));
  CHECK(rc.merges == 0);

  failing.merge = [](const ShardedTensorFactory&, const StateDict&) -> Status { throw std::runtime_error("oops"); };
  StateDict sd2;
  sd2.Add("b", failing);
  FlatRequest req2;
  REQUIRE_OK(FlattenForLoad(&sd2, &req2));
  CHECK_THAT(ApplyFactoryMerges(req2), StatusIs(StatusCode::kInternal, "state dict entry 'b' (factory 'b'): merge threw: oops"));
}

TEST_CASE("a factory whose pieces were dropped as unexpected is not merged", "[sharding][flatten][factory]") {
  float a[4] = {5, 5, 5, 5}, b[4] = {6, 6, 6, 6};
  Recorder ra, rb;
  StateDict sd;
  sd.Add("a", CopyFactory("a", a, &ra));
  sd.Add("b", CopyFactory("b", b, &rb));
  FlatRequest req;
  REQUIRE_OK(FlattenForLoad(&sd, &req));
  REQUIRE(req.tensors.size() == 4);

  SECTION("all pieces of 'a' dropped: 'a' untouched, 'b' merged") {
    req.tensors.erase(req.tensors.begin(), req.tensors.begin() + 2);
    REQUIRE_OK(ApplyFactoryMerges(req));
    CHECK(ra.merges == 0);
    CHECK(a[0] == 5);
    CHECK(rb.merges == 1);
  }
  SECTION("one piece of 'a' dropped: an error naming it") {
    req.tensors.erase(req.tensors.begin());
    CHECK_THAT(ApplyFactoryMerges(req),
               StatusIs(StatusCode::kInvalidArgument,
                        "state dict entry 'a' (factory 'a'): pieces 'inner.copy' were not loaded (unexpected keys), "
                        "and the merge needs every piece"));
    CHECK(ra.merges == 0);
  }
}

TEST_CASE("pieces are checked like the rest of the dict", "[sharding][flatten][factory]") {
  float data[4] = {};
  Recorder rec;
  auto with_build = [&](FactoryBuildFn build) {
    ShardedTensorFactory f = CopyFactory("f", data, &rec);
    f.build = std::move(build);
    StateDict sd;
    sd.Child("m").Add("f", f);
    return sd;
  };
  auto both = [](StateDict sd, StatusCode code, const std::string& msg) {
    FlatState flat;
    CHECK_THAT(FlattenForSave(sd, &flat), StatusIs(code, msg));
    FlatRequest req;
    CHECK_THAT(FlattenForLoad(&sd, &req), StatusIs(code, msg));
    StateDict out;
    std::vector<std::unique_ptr<FactoryArena>> arenas;
    CHECK_THAT(ExpandFactoriesForSave(sd, &out, &arenas), StatusIs(code, msg));
  };
  both(with_build(nullptr), StatusCode::kInvalidArgument, "state dict entry 'm.f' (factory 'f') has no build function");
  both(with_build([](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict* p) {
         p->Add("n", Value(1));
         return Status::OK();
       }),
       StatusCode::kInvalidArgument, "state dict entry 'm.f.n': a factory's build made a common-state value");
  both(with_build([](const ShardedTensorFactory& self, FactoryPhase, FactoryArena*, StateDict* p) {
         p->Child("d").Add("g", self);
         return Status::OK();
       }),
       StatusCode::kInvalidArgument, "state dict entry 'm.f.d.g': a factory's build made a factory");
  both(with_build([](const ShardedTensorFactory& self, FactoryPhase, FactoryArena*, StateDict* p) {
         p->Add("t", ShardedTensor::Whole("t", self.data)).Add("t", ShardedTensor::Whole("u", self.data));
         return Status::OK();
       }),
       StatusCode::kInvalidArgument, "duplicate state dict key 'm.f.t'");
  both(with_build([](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict*) {
         return Status::DataLoss("bad build");
       }),
       StatusCode::kDataLoss, "state dict entry 'm.f' (factory 'f'): bad build");
  both(with_build([](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict*) -> Status {
         throw 42;
       }),
       StatusCode::kInternal, "state dict entry 'm.f' (factory 'f'): build threw a non-standard exception");
}

TEST_CASE("an empty build contributes nothing", "[sharding][flatten][factory]") {
  float data[4] = {};
  Recorder rec;
  ShardedTensorFactory f = CopyFactory("f", data, &rec);
  f.build = [](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict*) { return Status::OK(); };
  StateDict sd;
  sd.Add("f", f);
  FlatState flat;
  REQUIRE_OK(FlattenForSave(sd, &flat));
  CHECK(flat.tensors.empty());
  CHECK(flat.factories.size() == 1);
}

TEST_CASE("ExpandFactoriesForSave gives the same leaves with no factory left", "[sharding][flatten][factory]") {
  float data[4] = {1, 2, 3, 4};
  Recorder rec;
  StateDict sd;
  sd.Child("model").Add("emb", CopyFactory("emb", data, &rec)).Add("lr", Value(0.5));
  sd.Add("w", ShardedTensor::Whole("w", TensorView(data, DType::kFloat32, {4})));
  StateDict expanded;
  std::vector<std::unique_ptr<FactoryArena>> arenas;
  REQUIRE_OK(ExpandFactoriesForSave(sd, &expanded, &arenas));
  REQUIRE(arenas.size() == 1);
  CHECK(arenas[0]->bytes() == 8);
  REQUIRE(expanded.dict(0).kind(0) == StateDict::Kind::kDict);  // the factory became its pieces

  FlatState direct, via;
  REQUIRE_OK(FlattenForSave(sd, &direct));
  REQUIRE_OK(FlattenForSave(expanded, &via));
  CHECK(via.factories.empty());
  REQUIRE(via.tensors.size() == direct.tensors.size());
  for (size_t i = 0; i < via.tensors.size(); ++i) {
    CHECK(via.tensors[i].path == direct.tensors[i].path);
    CHECK(via.tensors[i].item->key == direct.tensors[i].item->key);
    CHECK(via.tensors[i].item->global_box() == direct.tensors[i].item->global_box());
  }
  // The copy lives in the expansion's arena, holding the saved values.
  CHECK(static_cast<const float*>(via.tensors[0].item->data.data())[1] == 2.0f);
  CHECK(via.tensors[0].item->data.data() != direct.tensors[0].item->data.data());
  CHECK(via.common.Find("model")->Find("lr")->as_float() == 0.5);
}

}  // namespace
}  // namespace dcp::sharding
