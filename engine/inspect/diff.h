// Copyright (c) dcp authors.
//
// Diff: what changed between two steps of a store. Tensors are added,
// removed, retyped (dtype or global shape differ) or compared element by
// element:
//
//   - where both steps cut a tensor into the same chunk boxes, chunks are
//     compared by their XXH3-128 checksums from the manifests, without
//     reading a record; a chunk whose checksum differs counts as changed as a
//     whole (or, with DiffOptions::exact, both chunks are decoded and only
//     the differing elements count);
//   - elsewhere (the steps were saved with different layouts or chunk sizes)
//     the overlapping regions are decoded from both steps, in blocks of at
//     most DiffOptions::block_bytes per side, and compared element by
//     element (bitwise: NaN equals the same NaN, 0.0 differs from -0.0).
//
// Objects are compared by checksum, the common state by value.
//
// Thread safety: as the StoreReader.

#ifndef DCP_ENGINE_INSPECT_DIFF_H_
#define DCP_ENGINE_INSPECT_DIFF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/inspect/reader.h"

namespace dcp::inspect {

struct DiffOptions {
  // Only tensors and objects whose key matches (see KeyMatches).
  // Default: "" (all)
  std::string keys_glob;

  // Decode chunks whose checksums differ to count the elements that changed,
  // instead of counting the whole chunk.
  // Default: false
  bool exact = false;

  // Upper bound on the decoded bytes compared at once, per step.
  // Default: 64 MiB
  uint64_t block_bytes = uint64_t{64} << 20;
};

enum class Change { kSame, kChanged, kAdded, kRemoved, kRetyped };
const char* ChangeName(Change change);

struct TensorDiff {
  std::string key;
  Change change = Change::kSame;
  DType dtype_a = DType::kFloat32, dtype_b = DType::kFloat32;  // where present
  Shape shape_a, shape_b;
  uint64_t bytes = 0;               // the larger of the two steps' raw bytes
  uint64_t changed_bytes = 0;       // bytes of changed elements (or chunks, see exact)
  bool exact = true;                // false: changed_bytes counts whole chunks whose checksum differs
  uint64_t chunks_by_checksum = 0;  // chunk pairs compared without decoding
  uint64_t bytes_decoded = 0;       // raw bytes decoded (both steps)

  double changed_fraction() const { return bytes ? static_cast<double>(changed_bytes) / bytes : 0.0; }
};

struct ObjectDiff {
  std::string unique_key;
  Change change = Change::kSame;
  uint64_t size_a = 0, size_b = 0;
};

struct DiffReport {
  uint64_t step_a = 0, step_b = 0;
  std::string keys_glob;
  std::vector<TensorDiff> tensors;  // every matching key of either step, by key
  std::vector<ObjectDiff> objects;  // by unique key
  bool common_state_changed = false;
  std::vector<std::string> common_keys_changed;  // top-level keys added, removed or changed
  uint64_t bytes = 0;
  uint64_t changed_bytes = 0;
  bool exact = true;  // every tensor's changed_bytes is exact

  double changed_fraction() const { return bytes ? static_cast<double>(changed_bytes) / bytes : 0.0; }
};

// NotFound for an uncommitted step; DataLoss (naming key, offset and rank
// store) if a record that must be decoded is missing or corrupt, or a
// tensor's manifest entry is broken.
Result<DiffReport> Diff(StoreReader* reader, uint64_t step_a, uint64_t step_b, const DiffOptions& options = {});

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_DIFF_H_
