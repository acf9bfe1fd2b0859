// Copyright (c) dcp authors.
//
// The in-memory model of a step manifest: what one committed step holds.
// Kept apart from its FlatBuffers codec (manifest_codec.h): only the codec
// touches generated types.
//
// A manifest lists, per tensor key, the dtype, global shape and every chunk
// (its box in the global tensor and a RecordRef saying which rank store holds
// its record, its sizes, checksum and codec); per object its grid cell and
// record; and the common state as an encoded FlexBuffers document.
//
// Invariants (checked by DecodeManifest, and by CheckManifestInvariants):
//   - tensors sorted by key, keys unique and well formed; dtypes valid;
//   - every chunk box lies inside the global shape, the chunks of a tensor
//     cover it exactly once, raw_size == elements * dtype size;
//   - objects sorted by unique key, unique, offset inside the grid.
//
// Thread safety: a value type.

#ifndef DCP_ENGINE_MANIFEST_MANIFEST_H_
#define DCP_ENGINE_MANIFEST_MANIFEST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/metadata.h"
#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/codec/checksum.h"
#include "engine/codec/chunk_codec.h"

namespace dcp::manifest {

constexpr uint32_t kManifestFormatVersion = 1;

// A step's generation has its low kGenerationPartBits bits clear; the parts
// of a streaming write (BeginStep .. CommitStep) store their records under
// generation + part, so that each part is a key range of its own.
constexpr int kGenerationPartBits = 16;
constexpr uint64_t kGenerationParts = uint64_t{1} << kGenerationPartBits;
inline uint64_t StepGenerationOf(uint64_t record_generation) {
  return record_generation & ~(kGenerationParts - 1);
}

// Where a record lives and what it holds.
struct RecordRef {
  uint32_t store_rank = 0;
  uint64_t generation = 0;
  uint64_t raw_size = 0;
  uint64_t stored_size = 0;
  codec::Hash128 checksum;
  codec::ChunkCodec codec = codec::ChunkCodec::kRaw;
};

struct ChunkEntry {
  Box box;  // in global coordinates
  RecordRef record;
};

struct TensorEntry {
  std::string key;
  DType dtype = DType::kFloat32;
  Shape global_shape;
  std::vector<ChunkEntry> chunks;

  uint64_t raw_bytes() const;
  uint64_t stored_bytes() const;
};

struct ObjectEntry {
  std::string key;
  Shape global_shape;
  Shape global_offset;
  RecordRef record;

  std::string unique_key() const;  // as ShardedObject::unique_key()
};

struct StepManifest {
  uint32_t format_version = kManifestFormatVersion;
  uint64_t step = 0;
  uint64_t generation = 0;
  int64_t commit_time_ns = 0;
  uint32_t world_size = 0;
  std::vector<TensorEntry> tensors;  // sorted by key
  std::vector<ObjectEntry> objects;  // sorted by unique key
  std::string common_state;          // FlexBuffers document (common_state_codec.h)

  // Binary search; nullptr if absent.
  const TensorEntry* FindTensor(std::string_view key) const;
  const ObjectEntry* FindObject(std::string_view unique_key) const;

  // Sorts tensors and objects into their canonical order.
  void Canonicalize();
};

// Checks the invariants above; DataLoss naming the tensor/object otherwise.
Status CheckManifestInvariants(const StepManifest& m);

// True if `r` is a record the step of `m` wrote itself (not a reference to an
// earlier step's).
inline bool WrittenByStep(const RecordRef& r, const StepManifest& m) {
  return StepGenerationOf(r.generation) == m.generation;
}

// The public summary of a manifest (Store::Metadata, dcp-inspect).
StepMetadata Describe(const StepManifest& m);

// OK if `key` may name a tensor or object: 1..1024 bytes, no control bytes.
Status CheckKeySyntax(std::string_view key);

}  // namespace dcp::manifest

#endif  // DCP_ENGINE_MANIFEST_MANIFEST_H_
