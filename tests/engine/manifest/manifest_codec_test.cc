// Copyright (c) dcp authors.
// Tests of engine/manifest/manifest_codec.cc: StepManifest <-> framed FlatBuffer.

#include "engine/manifest/manifest_codec.h"

#include <flatbuffers/flatbuffers.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>

#include "engine/codec/frame.h"
#include "manifest_generated.h"
#include "tests/engine/manifest/sample_manifest.h"
#include "tests/testing/status_matchers.h"

namespace dcp::manifest {
namespace {

using dcp::testing::StatusIs;
using testing::CheckSameManifest;
using testing::MakeChunk;
using testing::MakeTensor;
using testing::SampleManifest;

constexpr char kWhat[] = "steps/00000000000000001234.manifest";

// Frames `payload` the way EncodeManifest does.
std::string Framed(std::string_view payload, uint32_t version = kManifestFormatVersion) {
  return codec::FrameBlob(kManifestMagic, version, payload);
}

TEST_CASE("EncodeManifest / DecodeManifest round trip field by field", "[manifest]") {
  const StepManifest m = SampleManifest();
  const std::string bytes = EncodeManifest(m);
  CHECK(bytes.substr(0, 8) == "DCPMANIF");
  const StepManifest back = ValueOrDie(DecodeManifest(bytes, kWhat));
  CheckSameManifest(m, back);
  // Encoding is deterministic.
  CHECK(EncodeManifest(back) == bytes);
}

TEST_CASE("An empty manifest round trips", "[manifest]") {
  StepManifest m;
  m.step = 0;
  const StepManifest back = ValueOrDie(DecodeManifest(EncodeManifest(m), kWhat));
  CheckSameManifest(m, back);
  CHECK(back.tensors.empty());
  CHECK(back.objects.empty());
  CHECK(back.common_state.empty());
}

TEST_CASE("Extreme field values round trip", "[manifest]") {
  StepManifest m;
  m.step = UINT64_MAX;
  m.generation = UINT64_MAX - 1;
  m.commit_time_ns = INT64_MIN;
  m.world_size = UINT32_MAX;
  TensorEntry t = MakeTensor("k", DType::kUInt64, 1, 0);
  t.chunks[0].record.store_rank = UINT32_MAX;
  t.chunks[0].record.generation = UINT64_MAX;
  t.chunks[0].record.checksum = {UINT64_MAX, 0};
  t.chunks[1].record.stored_size = UINT64_MAX;
  m.tensors.push_back(t);
  m.common_state = std::string(70000, '\xab');
  CheckSameManifest(m, ValueOrDie(DecodeManifest(EncodeManifest(m), kWhat)));
}

TEST_CASE("Manifest payloads round trip without invariant checks", "[manifest]") {
  // A rank's fragment holds chunks of some tensors only: not a valid manifest.
  StepManifest fragment;
  TensorEntry t = MakeTensor("partial", DType::kBFloat16, 2, 0);
  t.chunks.pop_back();
  fragment.tensors.push_back(t);
  const std::string payload = EncodeManifestPayload(fragment);
  CheckSameManifest(fragment, ValueOrDie(DecodeManifestPayload(payload, "fragment of rank 3")));
  CHECK_THAT(DecodeManifest(Framed(payload), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "manifest tensor 'partial' chunks leave 4 elements uncovered"));
}

TEST_CASE("Every truncation of a manifest is data loss", "[manifest]") {
  const std::string bytes = EncodeManifest(SampleManifest());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const auto r = DecodeManifest(std::string_view(bytes).substr(0, n), kWhat);
    INFO("length " << n << ": " << r.status().ToString());
    REQUIRE_THAT(r.status(), StatusIs(StatusCode::kDataLoss, kWhat));
  }
  // Extra bytes are as bad as missing ones.
  CHECK_THAT(DecodeManifest(bytes + "x", kWhat).status(), StatusIs(StatusCode::kDataLoss, "truncated or padded"));
}

TEST_CASE("Every single-byte flip of a manifest is data loss", "[manifest]") {
  const std::string bytes = EncodeManifest(SampleManifest());
  std::mt19937 rng(20240607);
  std::uniform_int_distribution<int> mask(1, 255);
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ mask(rng));
    const auto r = DecodeManifest(bad, kWhat);
    INFO("flip at " << pos << ": " << r.status().ToString());
    REQUIRE_THAT(r.status(), StatusIs(StatusCode::kDataLoss, kWhat));
  }
}

TEST_CASE("Garbage bytes are data loss", "[manifest]") {
  std::mt19937 rng(7);
  for (size_t len : {1, 7, 8, 31, 32, 33, 100, 4096}) {
    std::string g(len, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    INFO("length " << len);
    CHECK_THAT(DecodeManifest(g, kWhat).status(), StatusIs(StatusCode::kDataLoss, kWhat));
    // The right magic does not make garbage valid either.
    if (len >= 8) {
      std::memcpy(g.data(), kManifestMagic, 8);
      CHECK_THAT(DecodeManifest(g, kWhat).status(), StatusIs(StatusCode::kDataLoss, kWhat));
    }
  }
  CHECK_THAT(DecodeManifest("", kWhat).status(), StatusIs(StatusCode::kDataLoss, "is truncated (0 bytes)"));
  CHECK_THAT(DecodeManifest(std::string(64, '\0'), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "does not start with the magic"));
}

TEST_CASE("A valid frame around a garbage FlatBuffer is data loss", "[manifest]") {
  std::mt19937 rng(11);
  for (size_t len : {0, 1, 4, 8, 16, 64, 1000}) {
    std::string g(len, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    INFO("length " << len);
    CHECK_THAT(DecodeManifest(Framed(g), kWhat).status(), StatusIs(StatusCode::kDataLoss, kWhat));
    if (len >= 8) {
      std::memcpy(g.data() + 4, "DCPM", 4);  // right file identifier, garbage tables
      CHECK_THAT(DecodeManifest(Framed(g), kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, "failed FlatBuffers verification"));
    }
  }
  CHECK_THAT(DecodeManifest(Framed(std::string(64, '\0')), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "is not a manifest (bad FlatBuffers identifier)"));
}

TEST_CASE("Truncated and flipped payloads inside a valid frame never crash", "[manifest]") {
  const std::string payload = EncodeManifestPayload(SampleManifest());
  for (size_t n = 0; n < payload.size(); ++n) {
    const auto r = DecodeManifest(Framed(payload.substr(0, n)), kWhat);
    INFO("length " << n);
    REQUIRE_THAT(r.status(), StatusIs(StatusCode::kDataLoss, kWhat));
  }
  // A flipped byte may still decode to a valid manifest (e.g. a changed
  // checksum value); it must never crash or yield anything but data loss.
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> mask(1, 255);
  int rejected = 0;
  for (size_t pos = 0; pos < payload.size(); ++pos) {
    std::string bad = payload;
    bad[pos] = static_cast<char>(bad[pos] ^ mask(rng));
    const auto r = DecodeManifest(Framed(bad), kWhat);
    if (!r.ok()) {
      INFO("flip at " << pos);
      REQUIRE_THAT(r.status(), StatusIs(StatusCode::kDataLoss, kWhat));
      ++rejected;
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("Frame and payload versions are checked", "[manifest]") {
  const StepManifest m = SampleManifest();
  CHECK_THAT(DecodeManifest(Framed(EncodeManifestPayload(m), 2), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "unsupported manifest format version 2"));
  StepManifest v2 = m;
  v2.format_version = 2;
  CHECK_THAT(DecodeManifest(Framed(EncodeManifestPayload(v2)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "manifest format version 2 is not supported"));
  // EncodeManifest frames with the model's version, which the decoder refuses.
  CHECK_THAT(DecodeManifest(EncodeManifest(v2), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "unsupported manifest format version 2"));
  // Another framed blob is not a manifest.
  CHECK_THAT(DecodeManifest(codec::FrameBlob("DCPOTHER", 1, EncodeManifestPayload(m)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "does not start with the magic"));
}

// A manifest with one tensor "w" (4x4 float32) whose chunks are `chunks`.
std::string ManifestWith(std::vector<ChunkEntry> chunks, DType dtype = DType::kFloat32) {
  StepManifest m;
  m.tensors.push_back(MakeTensor("a", DType::kFloat32, 1, 0));
  TensorEntry w;
  w.key = "w";
  w.dtype = dtype;
  w.global_shape = {4, 4};
  w.chunks = std::move(chunks);
  m.tensors.push_back(w);
  return EncodeManifest(m);
}

TEST_CASE("Semantically wrong manifests are data loss naming the tensor", "[manifest]") {
  const DType f32 = DType::kFloat32;
  const auto decode = [](const std::string& bytes) { return DecodeManifest(bytes, kWhat).status(); };
  const std::string prefix = std::string(kWhat) + ": manifest tensor 'w'";

  CHECK_OK(decode(ManifestWith({MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)})));
  CHECK_THAT(decode(ManifestWith({MakeChunk(f32, {0, 0}, {3, 4}, 0, 0), MakeChunk(f32, {2, 0}, {2, 4}, 0, 1)})),
             StatusIs(StatusCode::kDataLoss, prefix + " has overlapping chunks"));
  CHECK_THAT(decode(ManifestWith({MakeChunk(f32, {0, 0}, {4, 3}, 0, 0)})),
             StatusIs(StatusCode::kDataLoss, prefix + " chunks leave 4 elements uncovered"));
  CHECK_THAT(decode(ManifestWith({MakeChunk(f32, {0, 0}, {4, 4}, 0, 0), MakeChunk(f32, {0, 4}, {4, 1}, 0, 1)})),
             StatusIs(StatusCode::kDataLoss, prefix + " chunk at [0:4, 4:5] lies outside global shape (4, 4)"));
  std::vector<ChunkEntry> wrong_size = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)};
  wrong_size[0].record.raw_size = 32;
  CHECK_THAT(decode(ManifestWith(wrong_size)),
             StatusIs(StatusCode::kDataLoss, prefix + " chunk at [0:4, 0:4] has raw size 32"));
  CHECK_THAT(decode(ManifestWith({MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)}, static_cast<DType>(99))),
             StatusIs(StatusCode::kDataLoss, prefix + " has an invalid dtype"));
  std::vector<ChunkEntry> bad_codec = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)};
  bad_codec[0].record.codec = static_cast<codec::ChunkCodec>(3);
  CHECK_THAT(decode(ManifestWith(bad_codec)),
             StatusIs(StatusCode::kDataLoss, std::string(kWhat) + ": tensor 'w' has unknown codec 3"));
}

TEST_CASE("Unsorted or duplicate tensor keys are data loss", "[manifest]") {
  StepManifest m;
  m.tensors.push_back(MakeTensor("b", DType::kInt32, 1, 0));
  m.tensors.push_back(MakeTensor("a", DType::kInt32, 1, 0));
  CHECK_THAT(DecodeManifest(EncodeManifest(m), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "manifest tensors are not sorted and unique at 'a'"));
  m.tensors[1].key = "b";
  CHECK_THAT(DecodeManifest(EncodeManifest(m), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "manifest tensors are not sorted and unique at 'b'"));
}

// Builds manifest payloads by hand, for structural faults the model cannot express.
std::string HandBuilt(const std::vector<int64_t>& global_shape, const std::vector<int64_t>& boxes, int num_chunks,
                      bool object_without_record, bool omit_boxes = false) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<fb::RecordRef> refs;
  for (int i = 0; i < num_chunks; ++i) refs.push_back(fb::RecordRef(1, 64, 112, fb::Hash128(1, 2), 0, 0));
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  tensors.push_back(fb::CreateTensor(b, b.CreateString("w"), static_cast<uint8_t>(DType::kFloat32),
                                     b.CreateVector(global_shape), omit_boxes ? 0 : b.CreateVector(boxes),
                                     b.CreateVectorOfStructs(refs)));
  std::vector<flatbuffers::Offset<fb::Object>> objects;
  if (object_without_record) {
    objects.push_back(fb::CreateObject(b, b.CreateString("obj"), b.CreateVector(std::vector<int64_t>{1}),
                                       b.CreateVector(std::vector<int64_t>{0}), nullptr));
  }
  auto root =
      fb::CreateManifest(b, kManifestFormatVersion, 1, 1, 0, 1, b.CreateVector(tensors), b.CreateVector(objects), 0);
  fb::FinishManifestBuffer(b, root);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

TEST_CASE("Structural faults a Verifier cannot see are data loss", "[manifest]") {
  // The hand-built baseline is valid: one 4x4 chunk.
  CHECK_OK(DecodeManifest(Framed(HandBuilt({4, 4}, {0, 0, 4, 4}, 1, false)), kWhat).status());
  CHECK_THAT(DecodeManifest(Framed(HandBuilt({4, 4}, {0, 0, 4}, 1, false)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'w' has 3 box coordinates for 1 chunks of rank 2"));
  CHECK_THAT(DecodeManifest(Framed(HandBuilt({4, 4}, {0, 0, 4, 4, 0, 0, 4, 4}, 1, false)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'w' has 8 box coordinates for 1 chunks of rank 2"));
  CHECK_THAT(DecodeManifest(Framed(HandBuilt({4, 4}, {0, 0, 4, 4}, 2, false)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'w' has 4 box coordinates for 2 chunks"));
  CHECK_THAT(DecodeManifest(Framed(HandBuilt({4, 4}, {0, 0, 4, 4}, 1, true)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "object 'obj' has no record reference"));
  // chunk_boxes is optional in the schema: a tensor with chunks but no boxes.
  CHECK_THAT(DecodeManifest(Framed(HandBuilt({4, 4}, {}, 1, false, true)), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'w' has 0 box coordinates for 1 chunks of rank 2"));
}

TEST_CASE("A 0-d tensor whose chunks have no box vector decodes without one", "[manifest]") {
  // A 0-d chunk stores no coordinates, so a missing chunk_boxes field is
  // consistent with any number of chunks (and must not be dereferenced).
  const std::string with = HandBuilt({}, {}, 1, false, false);
  const std::string without = HandBuilt({}, {}, 1, false, true);
  const StepManifest a = ValueOrDie(DecodeManifestPayload(with, kWhat));
  const StepManifest b = ValueOrDie(DecodeManifestPayload(without, kWhat));
  REQUIRE(b.tensors.size() == 1);
  REQUIRE(b.tensors[0].chunks.size() == 1);
  CHECK(b.tensors[0].chunks[0].box == Box{});
  CheckSameManifest(a, b);
}

TEST_CASE("Required FlatBuffers fields are enforced by the Verifier", "[manifest]") {
  flatbuffers::FlatBufferBuilder b;
  fb::TensorBuilder tb(b);  // no key, no global shape
  tb.add_dtype(static_cast<uint8_t>(DType::kFloat32));
  const auto t = tb.Finish();
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {t};
  fb::FinishManifestBuffer(b, fb::CreateManifest(b, kManifestFormatVersion, 1, 1, 0, 1, b.CreateVector(tensors)));
  const std::string payload(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  CHECK_THAT(DecodeManifest(Framed(payload), kWhat).status(),
             StatusIs(StatusCode::kDataLoss, "failed FlatBuffers verification"));
}

}  // namespace
}  // namespace dcp::manifest
