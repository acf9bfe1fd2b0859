// Copyright (c) dcp authors.
// Tests of engine/manifest/manifest.cc: the model, its invariants, Describe and key syntax.

#include "engine/manifest/manifest.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/engine/manifest/sample_manifest.h"
#include "tests/testing/status_matchers.h"

namespace dcp::manifest {
namespace {

using dcp::testing::StatusIs;
using testing::MakeChunk;
using testing::MakeObject;
using testing::MakeTensor;
using testing::SampleManifest;

TEST_CASE("CheckKeySyntax accepts ordinary keys up to 1024 bytes", "[manifest]") {
  CHECK_OK(CheckKeySyntax("a"));
  CHECK_OK(CheckKeySyntax("decoder.layers.0.self_attention.linear_qkv.weight"));
  CHECK_OK(CheckKeySyntax("with space/and@at,comma"));
  CHECK_OK(CheckKeySyntax("caf\xc3\xa9/\xe6\x9d\x83\xe9\x87\x8d"));  // UTF-8
  CHECK_OK(CheckKeySyntax(std::string(1024, 'k')));
}

TEST_CASE("CheckKeySyntax rejects empty, overlong and control-byte keys", "[manifest]") {
  CHECK_THAT(CheckKeySyntax(""), StatusIs(StatusCode::kInvalidArgument, "empty key"));
  const std::string long_key = "L" + std::string(1024, 'x');
  const Status s = CheckKeySyntax(long_key);
  CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument, "longer than 1024 bytes"));
  CHECK_THAT(s, StatusIs(StatusCode::kInvalidArgument, "'Lxxx"));
  for (int c : {0x00, 0x01, 0x09, 0x0a, 0x1f, 0x7f}) {
    INFO("byte " << c);
    std::string key = "ab";
    key.insert(key.begin() + 1, static_cast<char>(c));
    CHECK_THAT(CheckKeySyntax(key), StatusIs(StatusCode::kInvalidArgument, "control byte"));
  }
}

TEST_CASE("The sample manifest satisfies every invariant", "[manifest]") {
  CHECK_OK(CheckManifestInvariants(SampleManifest()));
  CHECK_OK(CheckManifestInvariants(StepManifest()));
}

TEST_CASE("FindTensor and FindObject search the sorted entries", "[manifest]") {
  const StepManifest m = SampleManifest();
  for (const TensorEntry& t : m.tensors) {
    const TensorEntry* found = m.FindTensor(t.key);
    REQUIRE(found != nullptr);
    CHECK(found == &t);
  }
  CHECK(m.FindTensor("model/") == nullptr);
  CHECK(m.FindTensor("zzz") == nullptr);
  CHECK(m.FindTensor("") == nullptr);
  const ObjectEntry* o = m.FindObject("optimizer/state/shard_1.0_2.2");
  REQUIRE(o != nullptr);
  CHECK(o->global_offset == Shape{1, 0});
  CHECK(m.FindObject("optimizer/state") == nullptr);
  const ObjectEntry* rng = m.FindObject("rng/shard__");
  REQUIRE(rng != nullptr);
  CHECK(rng->record.raw_size == 4096);
}

TEST_CASE("ObjectEntry::unique_key follows ShardedObject's format", "[manifest]") {
  CHECK(MakeObject("opt", {4, 2}, {3, 1}, 1, 0).unique_key() == "opt/shard_3.1_4.2");
  CHECK(MakeObject("opt", {8}, {0}, 1, 0).unique_key() == "opt/shard_0_8");
  CHECK(MakeObject("opt", {}, {}, 1, 0).unique_key() == "opt/shard__");
}

TEST_CASE("Canonicalize sorts tensors by key and objects by unique key", "[manifest]") {
  StepManifest m;
  m.tensors.push_back(MakeTensor("c", DType::kFloat32, 1, 0));
  m.tensors.push_back(MakeTensor("a", DType::kFloat32, 1, 0));
  m.tensors.push_back(MakeTensor("b", DType::kFloat32, 1, 0));
  m.objects.push_back(MakeObject("o", {12}, {10}, 1, 0));
  m.objects.push_back(MakeObject("o", {12}, {2}, 1, 0));
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "not sorted and unique at 'a'"));
  m.Canonicalize();
  CHECK(m.tensors[0].key == "a");
  CHECK(m.tensors[1].key == "b");
  CHECK(m.tensors[2].key == "c");
  // Unique keys sort as strings: "o/shard_10_12" < "o/shard_2_12".
  CHECK(m.objects[0].global_offset == Shape{10});
  CHECK(m.objects[1].global_offset == Shape{2});
  CHECK_OK(CheckManifestInvariants(m));
}

TEST_CASE("TensorEntry sums raw and stored bytes over its chunks", "[manifest]") {
  const TensorEntry t = MakeTensor("t", DType::kFloat64, 2, 0);
  uint64_t raw = 0, stored = 0;
  for (const ChunkEntry& c : t.chunks) {
    raw += c.record.raw_size;
    stored += c.record.stored_size;
  }
  CHECK(t.raw_bytes() == 4 * 6 * 8);
  CHECK(raw == t.raw_bytes());
  CHECK(stored == t.stored_bytes());
  CHECK(TensorEntry().raw_bytes() == 0);
}

TEST_CASE("Describe summarises steps, tensors and objects", "[manifest]") {
  const StepManifest m = SampleManifest();
  const StepMetadata md = Describe(m);
  CHECK(md.info.step == m.step);
  CHECK(md.info.generation == m.generation);
  CHECK(md.info.commit_time_ns == m.commit_time_ns);
  CHECK(md.info.world_size == m.world_size);
  CHECK(md.info.num_tensors == m.tensors.size());
  CHECK(md.info.num_objects == m.objects.size());
  REQUIRE(md.tensors.size() == m.tensors.size());
  REQUIRE(md.objects.size() == m.objects.size());
  uint64_t chunks = 0, raw = 0, stored = 0;
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorEntry& t = m.tensors[i];
    const TensorInfo& ti = md.tensors[i];
    INFO(t.key);
    CHECK(ti.key == t.key);
    CHECK(ti.dtype == t.dtype);
    CHECK(ti.global_shape == t.global_shape);
    CHECK(ti.num_chunks == t.chunks.size());
    CHECK(ti.raw_bytes == static_cast<uint64_t>(NumElements(t.global_shape)) * DTypeSize(t.dtype));
    CHECK(ti.stored_bytes == t.stored_bytes());
    chunks += t.chunks.size();
    raw += ti.raw_bytes;
    stored += ti.stored_bytes;
  }
  for (size_t i = 0; i < m.objects.size(); ++i) {
    const ObjectEntry& o = m.objects[i];
    const ObjectInfo& oi = md.objects[i];
    CHECK(oi.key == o.key);
    CHECK(oi.unique_key == o.unique_key());
    CHECK(oi.global_shape == o.global_shape);
    CHECK(oi.global_offset == o.global_offset);
    CHECK(oi.size == o.record.raw_size);
    raw += o.record.raw_size;
    stored += o.record.stored_size;
  }
  CHECK(md.info.num_chunks == chunks);
  CHECK(md.info.raw_bytes == raw);
  CHECK(md.info.stored_bytes == stored);
  CHECK(md.objects[2].unique_key == "rng/shard__");
  CHECK(md.objects[2].size == 4096);

  const StepMetadata empty = Describe(StepManifest());
  CHECK(empty.info.num_tensors == 0);
  CHECK(empty.info.raw_bytes == 0);
  CHECK(empty.tensors.empty());
}

// One broken tensor "w" in an otherwise valid manifest.
StepManifest WithTensor(TensorEntry t) {
  StepManifest m;
  m.tensors.push_back(MakeTensor("a", DType::kFloat32, 2, 0));
  m.tensors.push_back(std::move(t));
  m.tensors.push_back(MakeTensor("z", DType::kFloat32, 3, 0));
  return m;
}

TEST_CASE("CheckManifestInvariants names the tensor whose chunks are wrong", "[manifest]") {
  const DType f32 = DType::kFloat32;
  TensorEntry t;
  t.key = "w";
  t.dtype = f32;
  t.global_shape = {4, 4};

  SECTION("overlap") {
    t.chunks = {MakeChunk(f32, {0, 0}, {3, 4}, 0, 0), MakeChunk(f32, {2, 0}, {2, 4}, 1, 1)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' has overlapping chunks at [2:3, 0:4]"));
  }
  SECTION("hole") {
    t.chunks = {MakeChunk(f32, {0, 0}, {2, 4}, 0, 0), MakeChunk(f32, {3, 0}, {1, 4}, 1, 1)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunks leave 4 elements uncovered"));
  }
  SECTION("no chunks at all") {
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunks leave 16 elements uncovered"));
  }
  SECTION("0-d tensor without its chunk") {
    t.global_shape = {};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunks leave 1 elements uncovered"));
  }
  SECTION("chunk outside the global shape") {
    t.chunks = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0), MakeChunk(f32, {4, 0}, {1, 4}, 1, 1)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk at [4:5, 0:4] lies outside global shape"));
  }
  SECTION("chunk of the wrong rank") {
    t.chunks = {MakeChunk(f32, {0}, {16}, 0, 0)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk at [0:16] lies outside"));
  }
  SECTION("negative chunk origin") {
    t.chunks = {MakeChunk(f32, {-1, 0}, {4, 4}, 0, 0)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)), StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk"));
  }
  SECTION("empty chunk") {
    t.chunks = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0), MakeChunk(f32, {1, 1}, {0, 2}, 1, 1)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)), StatusIs(StatusCode::kDataLoss, "or is empty"));
  }
  SECTION("raw size that does not match the box") {
    t.chunks = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)};
    t.chunks[0].record.raw_size = 63;
    CHECK_THAT(
        CheckManifestInvariants(WithTensor(t)),
        StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk at [0:4, 0:4] has raw size 63 for 16 elements"));
  }
  SECTION("stored size smaller than a record header") {
    t.chunks = {MakeChunk(f32, {0, 0}, {4, 4}, 0, 0)};
    t.chunks[0].record.stored_size = codec::kChunkHeaderSize - 1;
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk at [0:4, 0:4] has a stored size smaller"));
  }
  SECTION("oversized record") {
    t.dtype = DType::kUInt8;
    t.global_shape = {int64_t{1} << 31};
    t.chunks = {MakeChunk(DType::kUInt8, {0}, {int64_t{1} << 31}, 0, 0)};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' chunk at [0:2147483648] has an oversized record"));
  }
  SECTION("invalid dtype") {
    for (int raw : {0, 18, 255}) {
      INFO("dtype " << raw);
      t.dtype = static_cast<DType>(raw);
      CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
                 StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' has an invalid dtype"));
    }
  }
  SECTION("negative extent") {
    t.global_shape = {4, -4};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss, "manifest tensor 'w' has a negative extent"));
  }
  SECTION("element count that overflows") {
    // 2^62 + 1 rows of 4 elements: the product wraps to 4 in 64 bits, which
    // would let a 4-byte chunk claim to cover the whole tensor.
    t.dtype = DType::kUInt8;
    t.global_shape = {(int64_t{1} << 62) + 1, 4};
    ChunkEntry c;
    c.box = Box{{0, 0}, t.global_shape};
    c.record = testing::MakeRecord(4, 0, 0);
    t.chunks = {c};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)),
               StatusIs(StatusCode::kDataLoss,
                        "manifest tensor 'w' has global shape (4611686018427387905, 4) whose size overflows 64 bits"));
    t.dtype = DType::kFloat64;  // the element count fits, the byte count does not
    t.global_shape = {int64_t{1} << 61, 2};
    CHECK_THAT(CheckManifestInvariants(WithTensor(t)), StatusIs(StatusCode::kDataLoss, "whose size overflows"));
    t.global_shape = {0, int64_t{1} << 62, int64_t{1} << 62};  // no elements: nothing to overflow
    t.chunks.clear();
    CHECK_OK(CheckManifestInvariants(WithTensor(t)));
  }
}

TEST_CASE("CheckManifestInvariants rejects unsorted, duplicate and malformed tensor keys", "[manifest]") {
  StepManifest m;
  m.tensors.push_back(MakeTensor("b", DType::kInt8, 1, 0));
  m.tensors.push_back(MakeTensor("a", DType::kInt8, 1, 0));
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "not sorted and unique at 'a'"));

  m.tensors[1].key = "b";
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "not sorted and unique at 'b'"));

  m.tensors[1].key = "c";
  CHECK_OK(CheckManifestInvariants(m));
  m.tensors[0].key = "";
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "malformed tensor key"));
  m.tensors[0].key = "b\nx";
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "malformed tensor key"));
}

TEST_CASE("CheckManifestInvariants checks objects", "[manifest]") {
  StepManifest m;
  m.objects.push_back(MakeObject("o", {4}, {1}, 8, 0));
  m.objects.push_back(MakeObject("o", {4}, {3}, 8, 1));
  CHECK_OK(CheckManifestInvariants(m));

  SECTION("unsorted") {
    std::swap(m.objects[0], m.objects[1]);
    CHECK_THAT(CheckManifestInvariants(m),
               StatusIs(StatusCode::kDataLoss, "manifest objects are not sorted and unique at 'o/shard_1_4'"));
  }
  SECTION("duplicate") {
    m.objects[1] = m.objects[0];
    CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "not sorted and unique at 'o/shard_1_4'"));
  }
  SECTION("offset outside the grid") {
    m.objects[1].global_offset = {4};
    CHECK_THAT(CheckManifestInvariants(m),
               StatusIs(StatusCode::kDataLoss, "manifest object 'o/shard_4_4' lies outside its grid"));
    m.objects[1].global_offset = {3};
    m.objects[0].global_offset = {-1};
    CHECK_THAT(CheckManifestInvariants(m),
               StatusIs(StatusCode::kDataLoss, "manifest object 'o/shard_-1_4' lies outside its grid"));
  }
  SECTION("offset and shape of different ranks") {
    m.objects[1].global_offset = {3, 0};
    CHECK_THAT(
        CheckManifestInvariants(m),
        StatusIs(StatusCode::kDataLoss, "manifest object 'o/shard_3.0_4' has offset and shape of different ranks"));
  }
  SECTION("record smaller than a header") {
    m.objects[1].record.stored_size = 3;
    CHECK_THAT(CheckManifestInvariants(m),
               StatusIs(StatusCode::kDataLoss, "manifest object 'o/shard_3_4' has a stored size smaller"));
  }
  SECTION("malformed key") {
    m.objects[0].key = "";
    CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "malformed object key"));
  }
}

TEST_CASE("CheckManifestInvariants rejects other format versions", "[manifest]") {
  StepManifest m = SampleManifest();
  m.format_version = kManifestFormatVersion + 1;
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "manifest format version 2 is not supported"));
  m.format_version = 0;
  CHECK_THAT(CheckManifestInvariants(m), StatusIs(StatusCode::kDataLoss, "manifest format version 0"));
}

}  // namespace
}  // namespace dcp::manifest
