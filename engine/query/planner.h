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
// A load request (AddShard) is planned piece by piece (sharding/pieces.h): a
// flat request (a distributed-optimizer slice) becomes the boxes of its range,
// each filling a stretch of the flat destination, so any saved layout can
// serve any requested one. With allow_shape_mismatch, a request whose global
// shape differs from the saved one (same number of axes) is clipped to the
// saved tensor, and the destination elements outside it are zero-filled.
//
// Thread safety: a ReadPlanner is used by one thread.

#ifndef DCP_ENGINE_QUERY_PLANNER_H_
#define DCP_ENGINE_QUERY_PLANNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dcp/sharded.h"
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

  // Plans filling load request `t` (its box, or for a flat request its range,
  // into t.data). If t.allow_shape_mismatch and the step holds the tensor with
  // another global shape of the same number of axes, only the part inside the
  // saved tensor is read, and the destination elements outside it are set to
  // zero here and now (they need no read; for device memory, copied from a
  // host buffer of zeros).
  // REQUIRES: t passes sharding::ValidateTensorLeaf.
  //
  // Errors: those of Add (a differing global shape without the flag says so);
  // InvalidArgument if the flag is set but the number of axes differs; errors
  // of writing zeros to device memory.
  Status AddShard(const ShardedTensor& t, const std::string& what);

  ReadPlan Finish();

 private:
  // The step's tensor `key`, checked to have `dtype`.
  Result<const manifest::TensorEntry*> Find(std::string_view key, DType dtype, const std::string& what) const;
  // Plans copying `region` (inside the tensor) into `dest` (region's shape, full rank).
  void AddRegion(const manifest::TensorEntry& t, const Box& region, const TensorView& dest);

  StepIndex* index_;
  ReadPlan plan_;
  std::map<const manifest::ChunkEntry*, size_t> position_;
  std::vector<size_t> scratch_;
};

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_PLANNER_H_
