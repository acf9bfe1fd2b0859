// Copyright (c) dcp authors.
//
// What a committed step holds, as reported by Store::Metadata and dcp-inspect:
// plain value types. The counterpart of Megatron's load_tensors_metadata
// (tensors by key, with dtype and global shape) and load_sharded_metadata
// (plus objects, by unique key).

#ifndef DCP_METADATA_H_
#define DCP_METADATA_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/types.h"

namespace dcp {

// Summary of one committed step.
struct StepInfo {
  uint64_t step = 0;
  uint64_t generation = 0;      // write generation (unique per Put)
  int64_t commit_time_ns = 0;   // Unix time of publication
  uint32_t world_size = 0;      // ranks that saved it
  uint64_t num_tensors = 0;
  uint64_t num_objects = 0;
  uint64_t num_chunks = 0;
  uint64_t raw_bytes = 0;       // tensor and object bytes before encoding
  uint64_t stored_bytes = 0;    // bytes of the encoded records the step uses
  uint64_t unique_bytes = 0;    // of those, the records this step wrote itself
                                // (the rest it references from earlier steps)
};

// One tensor of a step (ShardedTensor::key).
struct TensorInfo {
  std::string key;
  DType dtype = DType::kFloat32;
  Shape global_shape;           // prepended axes included
  uint64_t num_chunks = 0;      // chunk records the tensor is stored in
  uint64_t raw_bytes = 0;       // elements * dtype size
  uint64_t stored_bytes = 0;    // encoded record bytes
};

// One saved cell of a ShardedObject grid.
struct ObjectInfo {
  std::string key;         // ShardedObject::key
  std::string unique_key;  // "<key>/shard_<offset>_<shape>" (ObjectUniqueKey)
  Shape global_shape;      // the grid
  Shape global_offset;     // the cell
  uint64_t size = 0;       // bytes
};

struct StepMetadata {
  StepInfo info;
  std::vector<TensorInfo> tensors;  // sorted by key
  std::vector<ObjectInfo> objects;  // sorted by unique key

  // Binary search; nullptr if absent.
  const TensorInfo* FindTensor(std::string_view key) const {
    auto it = std::lower_bound(tensors.begin(), tensors.end(), key,
                               [](const TensorInfo& t, std::string_view k) { return t.key < k; });
    return it != tensors.end() && it->key == key ? &*it : nullptr;
  }
  const ObjectInfo* FindObject(std::string_view unique_key) const {
    auto it = std::lower_bound(objects.begin(), objects.end(), unique_key,
                               [](const ObjectInfo& o, std::string_view k) { return o.unique_key < k; });
    return it != objects.end() && it->unique_key == unique_key ? &*it : nullptr;
  }
};

}  // namespace dcp

#endif  // DCP_METADATA_H_
