// Copyright (c) dcp authors.

#include "engine/query/chunk_index.h"

namespace dcp::query {

StepIndex::StepIndex(std::shared_ptr<const manifest::StepManifest> manifest) : manifest_(std::move(manifest)) {}

void StepIndex::Overlapping(const manifest::TensorEntry& tensor, const Box& box, std::vector<size_t>* out) {
  TensorIndex* ti = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = indexes_[&tensor];
    if (!slot) {
      slot = std::make_unique<TensorIndex>();
      slot->boxes.reserve(tensor.chunks.size());
      for (const auto& c : tensor.chunks) slot->boxes.push_back(c.box);
      slot->index = std::make_unique<array::BoxIndex>(tensor.global_shape, &slot->boxes);
    }
    ti = slot.get();
  }
  ti->index->Query(box, out);
}

}  // namespace dcp::query
