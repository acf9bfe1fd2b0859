// Copyright (c) dcp authors.

#include "engine/query/planner.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/array/box.h"
#include "engine/array/strided_copy.h"
#include "engine/cuda/device.h"
#include "engine/sharding/pieces.h"

namespace dcp::query {

namespace {

// The parts of `box` outside an array of `bounds` (box origin >= 0): at most
// one slab per axis, disjoint.
std::vector<Box> OutsideOf(const Box& box, const Shape& bounds) {
  std::vector<Box> out;
  Box rest = box;
  for (size_t a = 0; a < bounds.size(); ++a) {
    const int64_t end = rest.origin[a] + rest.shape[a];
    if (end > bounds[a]) {
      Box slab = rest;
      slab.origin[a] = std::max(rest.origin[a], bounds[a]);
      slab.shape[a] = end - slab.origin[a];
      if (slab.num_elements() > 0) out.push_back(std::move(slab));
      rest.shape[a] = std::max<int64_t>(0, bounds[a] - rest.origin[a]);
    }
    if (rest.shape[a] == 0) break;
  }
  return out;
}

Status ZeroFill(const TensorView& dest, const std::string& what) {
  if (dest.num_elements() == 0) return Status::OK();
  if (dest.device().is_host() && dest.is_contiguous()) {
    std::memset(dest.data(), 0, dest.size_bytes());
    return Status::OK();
  }
  const std::vector<char> zeros(dest.size_bytes(), 0);
  if (dest.device().is_host()) {
    array::UnpackView(zeros.data(), dest);
    return Status::OK();
  }
  cuda::Stream stream;
  return cuda::CopyToDevice(zeros.data(), dest, &stream).Annotate(what + ": zero-filling the padding");
}

}  // namespace

Result<const manifest::TensorEntry*> ReadPlanner::Find(std::string_view key, DType dtype,
                                                       const std::string& what) const {
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
  return t;
}

namespace {

std::string ShapeMismatch(const std::string& what, const Shape& requested, uint64_t step,
                          const manifest::TensorEntry& t) {
  return what + ": requests global shape " + ShapeToString(requested) + " but step " + std::to_string(step) +
         " holds tensor '" + t.key + "' with global shape " + ShapeToString(t.global_shape);
}

}  // namespace

Status ReadPlanner::Add(std::string_view key, DType dtype, const Shape& global_shape, const Box& region,
                        const TensorView& dest, const std::string& what) {
  DCP_ASSIGN_OR_RETURN(const manifest::TensorEntry* t, Find(key, dtype, what));
  if (t->global_shape != global_shape) {
    return Status::InvalidArgument(ShapeMismatch(what, global_shape, index_->manifest().step, *t));
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
  AddRegion(*t, region, TensorView(dest.data(), dest.dtype(), shape, strides, dest.device()));
  return Status::OK();
}

Status ReadPlanner::AddShard(const ShardedTensor& t, const std::string& what) {
  DCP_ASSIGN_OR_RETURN(const manifest::TensorEntry* e, Find(t.key, t.dtype, what));
  const bool clip = e->global_shape != t.global_shape;
  if (clip && !t.allow_shape_mismatch) {
    return Status::InvalidArgument(ShapeMismatch(what, t.global_shape, index_->manifest().step, *e) +
                                   " (set allow_shape_mismatch to pad or clip)");
  }
  if (clip && e->global_shape.size() != t.global_shape.size()) {
    return Status::InvalidArgument(ShapeMismatch(what, t.global_shape, index_->manifest().step, *e) +
                                   ": allow_shape_mismatch pads or clips axes but cannot change their number");
  }
  for (const sharding::Piece& p : sharding::PiecesOf(t)) {
    if (!clip) {
      AddRegion(*e, p.box, p.data);
      continue;
    }
    for (const Box& out : OutsideOf(p.box, e->global_shape)) {
      DCP_RETURN_IF_ERROR(ZeroFill(p.data.Slice(array::RelativeTo(out, p.box.origin)), what));
    }
    Box inside;
    if (array::Intersect(p.box, array::BoxOfShape(e->global_shape), &inside)) {
      AddRegion(*e, inside, p.data.Slice(array::RelativeTo(inside, p.box.origin)));
    }
  }
  return Status::OK();
}

void ReadPlanner::AddRegion(const manifest::TensorEntry& t, const Box& region, const TensorView& dest) {
  if (region.num_elements() == 0) return;
  scratch_.clear();
  index_->Overlapping(t, region, &scratch_);
  Box common;
  for (size_t pos : scratch_) {
    const manifest::ChunkEntry& c = t.chunks[pos];
    if (!array::Intersect(c.box, region, &common)) continue;
    auto [it, fresh] = position_.emplace(&c, plan_.reads.size());
    if (fresh) {
      plan_.reads.push_back({&t, &c, {}});
      plan_.record_bytes += c.record.stored_size;
    }
    plan_.reads[it->second].copies.push_back(
        {array::RelativeTo(common, c.box.origin), dest.Slice(array::RelativeTo(common, region.origin))});
  }
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
