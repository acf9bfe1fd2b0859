// Copyright (c) dcp authors.
//
// Read planning: turns requests (a region of a tensor of a step, and where to
// put it) into a list of chunk reads, each with the copies it feeds. A chunk
// needed by several requests of this rank is read once.
//
// Planning also checks each request against the step: the tensor exists, the
// dtype and global shape match, the region lies inside the tensor, the
// destination has the region's shape.
//
// Thread safety: a ReadPlanner is used by one thread.

#ifndef DCP_ENGINE_QUERY_PLANNER_H_
#define DCP_ENGINE_QUERY_PLANNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "dcp/tensor_view.h"
#include "engine/manifest/manifest.h"
#include "engine/query/chunk_index.h"

namespace dcp::query {

// One copy out of a decoded chunk.
struct CopyOut {
  Box src;          // region relative to the chunk's origin
  TensorView dest;  // destination of that region (same shape)
};

struct ChunkRead {
  const manifest::TensorEntry* tensor = nullptr;
  const manifest::ChunkEntry* chunk = nullptr;
  std::vector<CopyOut> copies;
};

struct ReadPlan {
  std::vector<ChunkRead> reads;
  uint64_t record_bytes = 0;  // stored bytes of all chunks read
};

class ReadPlanner {
 public:
  explicit ReadPlanner(StepIndex* index) : index_(index) {}

  // Plans filling `dest` with `region` (global coordinates, full rank) of
  // tensor `key`. `dest` may have fewer axes than the tensor: its missing
  // leading axes are the region's prepended size-1 axes. `what` names the
  // request in errors (e.g. "state dict entry 'model.w'").
  //
  // Errors: NotFound (no such tensor in the step); InvalidArgument (dtype,
  // global shape, region or destination shape mismatch).
  Status Add(std::string_view key, DType dtype, const Shape& global_shape, const Box& region, const TensorView& dest,
             const std::string& what);

  ReadPlan Finish();

 private:
  StepIndex* index_;
  ReadPlan plan_;
  std::map<const manifest::ChunkEntry*, size_t> position_;
  std::vector<size_t> scratch_;
};

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_PLANNER_H_
