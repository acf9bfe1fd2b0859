// Copyright (c) dcp authors.
//
// Manifests for the manifest-module tests: a valid sample covering every
// dtype, tensor ranks 0..4, several chunks per tensor and objects, and a
// field-by-field comparison that names the field that differs.

#ifndef DCP_TESTS_ENGINE_MANIFEST_SAMPLE_MANIFEST_H_
#define DCP_TESTS_ENGINE_MANIFEST_SAMPLE_MANIFEST_H_

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "dcp/types.h"
#include "engine/codec/chunk_codec.h"
#include "engine/manifest/manifest.h"

namespace dcp::manifest::testing {

inline RecordRef MakeRecord(uint64_t raw_size, uint32_t store_rank, uint64_t salt) {
  RecordRef r;
  r.store_rank = store_rank;
  r.generation = 0x1000 + salt;
  r.raw_size = raw_size;
  r.stored_size = raw_size + codec::kChunkHeaderSize + salt % 7;
  r.checksum = {0x9e3779b97f4a7c15ULL * (salt + 1), 0xc2b2ae3d27d4eb4fULL ^ salt};
  r.codec = static_cast<codec::ChunkCodec>(salt % 3);
  return r;
}

inline ChunkEntry MakeChunk(DType dtype, Shape origin, Shape shape, uint32_t store_rank, uint64_t salt) {
  ChunkEntry c;
  c.box = Box{std::move(origin), std::move(shape)};
  c.record = MakeRecord(static_cast<uint64_t>(c.box.num_elements()) * DTypeSize(dtype), store_rank, salt);
  return c;
}

// A tensor of rank `rank` (0..4) tiled by 1..4 uneven chunks.
inline TensorEntry MakeTensor(std::string key, DType dtype, int rank, uint64_t salt) {
  TensorEntry t;
  t.key = std::move(key);
  t.dtype = dtype;
  switch (rank) {
    case 0:
      t.chunks.push_back(MakeChunk(dtype, {}, {}, 0, salt));
      break;
    case 1:
      t.global_shape = {10};
      t.chunks.push_back(MakeChunk(dtype, {0}, {4}, 0, salt));
      t.chunks.push_back(MakeChunk(dtype, {4}, {6}, 1, salt + 1));
      break;
    case 2:
      t.global_shape = {4, 6};
      t.chunks.push_back(MakeChunk(dtype, {0, 0}, {3, 2}, 0, salt));
      t.chunks.push_back(MakeChunk(dtype, {0, 2}, {3, 4}, 1, salt + 1));
      t.chunks.push_back(MakeChunk(dtype, {3, 0}, {1, 2}, 2, salt + 2));
      t.chunks.push_back(MakeChunk(dtype, {3, 2}, {1, 4}, 3, salt + 3));
      break;
    case 3:
      t.global_shape = {2, 3, 4};
      t.chunks.push_back(MakeChunk(dtype, {0, 0, 0}, {1, 3, 4}, 0, salt));
      t.chunks.push_back(MakeChunk(dtype, {1, 0, 0}, {1, 3, 1}, 1, salt + 1));
      t.chunks.push_back(MakeChunk(dtype, {1, 0, 1}, {1, 3, 3}, 2, salt + 2));
      break;
    default:
      t.global_shape = {2, 2, 2, 3};
      t.chunks.push_back(MakeChunk(dtype, {0, 0, 0, 0}, {2, 2, 2, 1}, 5, salt));
      t.chunks.push_back(MakeChunk(dtype, {0, 0, 0, 1}, {2, 2, 2, 2}, 6, salt + 1));
      break;
  }
  return t;
}

inline ObjectEntry MakeObject(std::string key, Shape global_shape, Shape global_offset, uint64_t raw_size,
                              uint64_t salt) {
  ObjectEntry o;
  o.key = std::move(key);
  o.global_shape = std::move(global_shape);
  o.global_offset = std::move(global_offset);
  o.record = MakeRecord(raw_size, static_cast<uint32_t>(salt % 4), salt);
  return o;
}

// A canonical (sorted) manifest that satisfies every invariant: one tensor per
// dtype with rank (index % 5), one tensor with no elements (and no chunks),
// and objects on 0-d and 2-d grids. Common state holds arbitrary bytes, NULs
// included.
inline StepManifest SampleManifest() {
  StepManifest m;
  m.step = 1234;
  m.generation = 0xabcdef0123ULL;
  m.commit_time_ns = 1700000000123456789LL;
  m.world_size = 8;
  uint64_t salt = 0;
  int i = 0;
  for (DType dtype : AllDTypes()) {
    m.tensors.push_back(
        MakeTensor("model/layer" + std::to_string(i) + "/" + std::string(DTypeName(dtype)), dtype, i % 5, salt));
    salt += 4;
    ++i;
  }
  TensorEntry empty;
  empty.key = "model/empty";
  empty.dtype = DType::kInt64;
  empty.global_shape = {0, 3};
  m.tensors.push_back(empty);
  m.objects.push_back(MakeObject("optimizer/state", {2, 2}, {0, 1}, 17, 101));
  m.objects.push_back(MakeObject("optimizer/state", {2, 2}, {1, 0}, 0, 102));
  m.objects.push_back(MakeObject("rng", {}, {}, 4096, 103));
  m.common_state = std::string("\x00\x01\x02 common state \xff", 19);
  m.Canonicalize();
  return m;
}

inline void CheckSameRecord(const RecordRef& a, const RecordRef& b) {
  CHECK(a.store_rank == b.store_rank);
  CHECK(a.generation == b.generation);
  CHECK(a.raw_size == b.raw_size);
  CHECK(a.stored_size == b.stored_size);
  CHECK(a.checksum == b.checksum);
  CHECK(a.codec == b.codec);
}

inline void CheckSameManifest(const StepManifest& a, const StepManifest& b) {
  CHECK(a.format_version == b.format_version);
  CHECK(a.step == b.step);
  CHECK(a.generation == b.generation);
  CHECK(a.commit_time_ns == b.commit_time_ns);
  CHECK(a.world_size == b.world_size);
  CHECK(a.common_state == b.common_state);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorEntry& x = a.tensors[i];
    const TensorEntry& y = b.tensors[i];
    INFO("tensor " << x.key);
    CHECK(x.key == y.key);
    CHECK(x.dtype == y.dtype);
    CHECK(x.global_shape == y.global_shape);
    REQUIRE(x.chunks.size() == y.chunks.size());
    for (size_t c = 0; c < x.chunks.size(); ++c) {
      INFO("chunk " << c);
      CHECK(x.chunks[c].box == y.chunks[c].box);
      CheckSameRecord(x.chunks[c].record, y.chunks[c].record);
    }
  }
  REQUIRE(a.objects.size() == b.objects.size());
  for (size_t i = 0; i < a.objects.size(); ++i) {
    const ObjectEntry& x = a.objects[i];
    const ObjectEntry& y = b.objects[i];
    INFO("object " << x.unique_key());
    CHECK(x.key == y.key);
    CHECK(x.global_shape == y.global_shape);
    CHECK(x.global_offset == y.global_offset);
    CheckSameRecord(x.record, y.record);
  }
}

}  // namespace dcp::manifest::testing

#endif  // DCP_TESTS_ENGINE_MANIFEST_SAMPLE_MANIFEST_H_
