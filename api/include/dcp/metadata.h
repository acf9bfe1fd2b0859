// Copyright (c) dcp authors.
//
// What a committed step holds, as reported by Store::Metadata and dcp-inspect:
// plain value types.

#ifndef DCP_METADATA_H_
#define DCP_METADATA_H_

#include <cstdint>
#include <string>
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

struct TensorInfo {
  std::string key;
  DType dtype = DType::kFloat32;
  Shape global_shape;
  uint64_t num_chunks = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
};

struct ObjectInfo {
  std::string key;
  std::string unique_key;
  Shape global_shape;
  Shape global_offset;
  uint64_t size = 0;
};

struct StepMetadata {
  StepInfo info;
  std::vector<TensorInfo> tensors;  // sorted by key
  std::vector<ObjectInfo> objects;  // sorted by unique key
};

}  // namespace dcp

#endif  // DCP_METADATA_H_
