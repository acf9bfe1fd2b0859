// Copyright (c) dcp authors.

#include "engine/inspect/reader.h"

#include <catch2/catch.hpp>

#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

TEST_CASE("ResolveStep takes a number or 'latest'", "[inspect]") {
  InspectFixture f;
  CHECK(ValueOrDie(ResolveStep(f.root(), "7")) == 7);
  CHECK(ValueOrDie(ResolveStep(f.root(), "latest")) == 9);
  CHECK(ValueOrDie(ResolveStep(f.root(), "18446744073709551615")) == UINT64_MAX);
  REQUIRE_THAT(ResolveStep(f.root(), "18446744073709551616").status(),
               StatusIs(StatusCode::kInvalidArgument, "is not a step number"));
  REQUIRE_THAT(ResolveStep(f.root(), "-1").status(), StatusIs(StatusCode::kInvalidArgument, "'-1'"));
  REQUIRE_THAT(ResolveStep(f.root(), "7x").status(), StatusIs(StatusCode::kInvalidArgument, "'7x'"));
  REQUIRE_THAT(ResolveStep(f.root(), "").status(), StatusIs(StatusCode::kInvalidArgument));
  testing::TempDir empty;
  REQUIRE_OK(storage::CreateOrCheckStoreRoot(empty.path()));
  REQUIRE_THAT(ResolveStep(empty.path(), "latest").status(), StatusIs(StatusCode::kNotFound, "has no committed step"));
}

TEST_CASE("ReadRegion reads any region from whichever rank stores hold it", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  auto step = ValueOrDie(reader->Load(7));
  CHECK(step->valid());
  CHECK(ValueOrDie(reader->Load(7)) == step);  // cached
  const manifest::TensorEntry* w = ValueOrDie(reader->Tensor(*step, "layer.w"));
  // Across a chunk boundary, across the ranks' boundary, the whole tensor.
  for (const Box& box : {Box{{60, 3}, {10, 7}}, Box{{120, 0}, {16, 64}}, Box{{0, 0}, {256, 64}}}) {
    std::string out(static_cast<size_t>(box.num_elements()) * 4, '\0');
    REQUIRE_OK(reader->ReadRegion(*step, *w, box, out.data()));
    CHECK(out == f.RegionBytes(7, "layer.w", box));
  }
  const manifest::TensorEntry* scalar = ValueOrDie(reader->Tensor(*step, "scalar"));
  std::string one(8, '\0');
  REQUIRE_OK(reader->ReadRegion(*step, *scalar, Box{}, one.data()));
  CHECK(one == f.Values(7, "scalar"));
  std::string dummy(4, '\0');
  REQUIRE_THAT(reader->ReadRegion(*step, *w, Box{{250, 0}, {10, 1}}, dummy.data()),
               StatusIs(StatusCode::kInvalidArgument, "lies outside tensor 'layer.w'"));
  REQUIRE_THAT(reader->Tensor(*step, "bias").status(),
               StatusIs(StatusCode::kNotFound, "tensor 'bias' is not in step 7"));
  std::string object;
  REQUIRE_OK(reader->ReadObject(*step, step->manifest().objects[0], &object));
  CHECK(object == "rng-of-rank-0-advanced");
}

TEST_CASE("DecodeStep records invariant problems per entry instead of failing", "[inspect]") {
  InspectFixture f;
  auto m = ValueOrDie(manifest::DecodeManifest(ValueOrDie(storage::ReadManifestFile(f.root(), 5)), "m"));
  // A chunk pushed outside the tensor, and an object outside its grid.
  for (auto& t : m.tensors) {
    if (t.key == "emb") t.chunks[0].box.origin[1] = 100;
  }
  m.objects[1].global_offset = {5};
  const std::string bytes = manifest::EncodeManifest(m);
  const auto step = ValueOrDie(DecodeStep(bytes, "test manifest"));
  CHECK_FALSE(step->valid());
  CHECK_OK(step->order);
  size_t bad_tensors = 0;
  for (size_t i = 0; i < step->tensor_status.size(); ++i) {
    if (step->tensor_status[i].ok()) continue;
    ++bad_tensors;
    CHECK(step->manifest().tensors[i].key == "emb");
    REQUIRE_THAT(step->tensor_status[i], StatusIs(StatusCode::kDataLoss, "lies outside global shape (32, 16)"));
  }
  CHECK(bad_tensors == 1);
  CHECK_OK(step->object_status[0]);
  REQUIRE_THAT(step->object_status[1], StatusIs(StatusCode::kDataLoss, "lies outside its grid"));
  REQUIRE_THAT(step->FirstProblem(), StatusIs(StatusCode::kDataLoss, "emb"));

  // Structural damage is still fatal: the frame checksum.
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 1;
  REQUIRE_THAT(DecodeStep(damaged, "test manifest").status(), StatusIs(StatusCode::kDataLoss, "test manifest"));
  REQUIRE_THAT(DecodeStep("short", "test manifest").status(), StatusIs(StatusCode::kDataLoss, "test manifest"));
}

}  // namespace
}  // namespace dcp::inspect
