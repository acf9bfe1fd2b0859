// Copyright (c) dcp authors.
//
// StepIndex: the lookup structure of one decoded step manifest. For each
// tensor it builds, on first use, a BoxIndex over the tensor's chunk boxes,
// so finding the chunks that overlap a requested region costs about the
// number of cells the region touches, not the number of chunks.
//
// Thread safety: Overlapping may be called concurrently.

#ifndef DCP_ENGINE_QUERY_CHUNK_INDEX_H_
#define DCP_ENGINE_QUERY_CHUNK_INDEX_H_

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/array/box_index.h"
#include "engine/manifest/manifest.h"

namespace dcp::query {

class StepIndex {
 public:
  explicit StepIndex(std::shared_ptr<const manifest::StepManifest> manifest);

  const manifest::StepManifest& manifest() const { return *manifest_; }
  const std::shared_ptr<const manifest::StepManifest>& shared_manifest() const { return manifest_; }

  // Appends to *out the positions (in tensor.chunks) of the chunks that share
  // an element with `box`, ascending. REQUIRES: tensor belongs to manifest().
  void Overlapping(const manifest::TensorEntry& tensor, const Box& box, std::vector<size_t>* out);

 private:
  struct TensorIndex {
    std::vector<Box> boxes;
    std::unique_ptr<array::BoxIndex> index;
  };
  std::shared_ptr<const manifest::StepManifest> manifest_;
  std::mutex mu_;
  std::map<const manifest::TensorEntry*, std::unique_ptr<TensorIndex>> indexes_;  // guarded by mu_
};

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_CHUNK_INDEX_H_
