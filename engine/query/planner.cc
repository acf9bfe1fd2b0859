// Copyright (c) dcp authors.

#include "engine/query/planner.h"

#include <algorithm>

#include "engine/array/box.h"

namespace dcp::query {

Status ReadPlanner::Add(std::string_view key, DType dtype, const Shape& global_shape, const Box& region,
                        const TensorView& dest, const std::string& what) {
  const manifest::StepManifest& m = index_->manifest();
  const manifest::TensorEntry* t = m.FindTensor(key);
  const std::string step = "step " + std::to_string(m.step);
  if (t == nullptr) {
    return Status::NotFound(what + ": tensor '" + std::string(key) + "' is not in " + step);
  }
  if (t->dtype != dtype) {
    return Status::InvalidArgument(what + ": requests dtype " + std::string(DTypeName(dtype)) + " but " + step +
                                   " holds tensor '" + t->key + "' as " + std::string(DTypeName(t->dtype)));
  }
  if (t->global_shape != global_shape) {
    return Status::InvalidArgument(what + ": requests global shape " + ShapeToString(global_shape) + " but " + step +
                                   " holds tensor '" + t->key + "' with global shape " +
                                   ShapeToString(t->global_shape));
  }
  if (!array::IsWithin(region, t->global_shape)) {
    return Status::InvalidArgument(what + ": region " + region.ToString() + " lies outside tensor '" + t->key +
                                   "' of global shape " + ShapeToString(t->global_shape));
  }
  // The destination seen with the tensor's full rank (missing leading axes
  // are size-1).
  const size_t rank = region.shape.size();
  if (dest.rank() > static_cast<int>(rank)) {
    return Status::InvalidArgument(what + ": destination has more axes than tensor '" + t->key + "'");
  }
  const size_t lead = rank - static_cast<size_t>(dest.rank());
  Shape shape(lead, 1), strides(lead, 0);
  shape.insert(shape.end(), dest.shape().begin(), dest.shape().end());
  strides.insert(strides.end(), dest.strides().begin(), dest.strides().end());
  if (shape != region.shape) {
    return Status::InvalidArgument(what + ": destination shape " + ShapeToString(dest.shape()) +
                                   " does not match region " + region.ToString() + " of tensor '" + t->key + "'");
  }
  if (dest.dtype() != dtype) {
    return Status::InvalidArgument(what + ": destination dtype " + std::string(DTypeName(dest.dtype())) +
                                   " differs from " + std::string(DTypeName(dtype)));
  }
  const TensorView full(dest.data(), dest.dtype(), shape, strides, dest.device());
  if (region.num_elements() == 0) return Status::OK();

  scratch_.clear();
  index_->Overlapping(*t, region, &scratch_);
  Box common;
  for (size_t pos : scratch_) {
    const manifest::ChunkEntry& c = t->chunks[pos];
    if (!array::Intersect(c.box, region, &common)) continue;
    auto [it, fresh] = position_.emplace(&c, plan_.reads.size());
    if (fresh) {
      plan_.reads.push_back({t, &c, {}});
      plan_.record_bytes += c.record.stored_size;
    }
    plan_.reads[it->second].copies.push_back(
        {array::RelativeTo(common, c.box.origin), full.Slice(array::RelativeTo(common, region.origin))});
  }
  return Status::OK();
}

ReadPlan ReadPlanner::Finish() {
  position_.clear();
  // Store by store, in record order: sequential reads within each table file.
  std::stable_sort(plan_.reads.begin(), plan_.reads.end(), [](const ChunkRead& a, const ChunkRead& b) {
    if (a.chunk->record.store_rank != b.chunk->record.store_rank) {
      return a.chunk->record.store_rank < b.chunk->record.store_rank;
    }
    if (a.tensor != b.tensor) return a.tensor->key < b.tensor->key;
    return a.chunk < b.chunk;
  });
  return std::move(plan_);
}

}  // namespace dcp::query
