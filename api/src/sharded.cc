// Copyright (c) dcp authors.

#include "dcp/sharded.h"

#include <string>

namespace dcp {

bool IsMainReplica(const ReplicaId& id) {
  for (int64_t r : id) {
    if (r != 0) return false;
  }
  return true;
}

Box ShardedTensor::global_box() const {
  Box box;
  box.origin = global_offset;
  box.shape.assign(static_cast<size_t>(prepend_axis_num > 0 ? prepend_axis_num : 0), 1);
  box.shape.insert(box.shape.end(), local_shape.begin(), local_shape.end());
  return box;
}

ShardedTensor ShardedTensor::Whole(std::string key, TensorView data) {
  ShardedTensor t;
  t.key = std::move(key);
  t.dtype = data.dtype();
  t.local_shape = data.shape();
  t.global_shape = data.shape();
  t.global_offset.assign(data.shape().size(), 0);
  t.data = std::move(data);
  return t;
}

namespace {

// The geometry of from_rank_offsets for a local tensor of `local_shape`: sets
// local_shape, global_shape, global_offset and prepend_axis_num of `t`.
Status PlaceByRankOffsets(const std::string& key, const Shape& local_shape,
                          const std::vector<AxisFragmentation>& fragmentation, int prepend_axis_num,
                          ShardedTensor* t) {
  auto error = [&](const std::string& what) {
    return Status::InvalidArgument("sharded tensor '" + key + "': " + what);
  };
  if (prepend_axis_num < 0) return error("prepend_axis_num is negative");
  t->local_shape = local_shape;
  const size_t rank = static_cast<size_t>(prepend_axis_num) + local_shape.size();
  t->global_shape.assign(static_cast<size_t>(prepend_axis_num), 1);
  t->global_shape.insert(t->global_shape.end(), local_shape.begin(), local_shape.end());
  t->global_offset.assign(rank, 0);
  std::vector<bool> seen(rank, false);
  for (const AxisFragmentation& f : fragmentation) {
    const std::string axis = "axis " + std::to_string(f.axis);
    if (f.axis < 0 || static_cast<size_t>(f.axis) >= rank) {
      return error(axis + " is out of range for a " + std::to_string(rank) + "-d global tensor");
    }
    if (seen[f.axis]) return error(axis + " is fragmented twice");
    seen[f.axis] = true;
    if (f.fragments < 1) return error(axis + " has fragments " + std::to_string(f.fragments) + " < 1");
    if (f.rank_offset < 0 || f.rank_offset >= f.fragments) {
      return error(axis + " has rank offset " + std::to_string(f.rank_offset) + " outside [0, " +
                   std::to_string(f.fragments) + ")");
    }
    const int64_t local_len = f.axis < prepend_axis_num ? 1 : local_shape[f.axis - prepend_axis_num];
    t->global_shape[f.axis] = f.fragments * local_len;
    t->global_offset[f.axis] = f.rank_offset * local_len;
  }
  t->prepend_axis_num = prepend_axis_num;
  return Status::OK();
}

}  // namespace

Result<ShardedTensor> ShardedTensorFromRankOffsets(std::string key, TensorView data,
                                                   std::vector<AxisFragmentation> fragmentation,
                                                   ReplicaId replica_id, int prepend_axis_num) {
  DCP_RETURN_IF_ERROR(data.Validate().Annotate("sharded tensor '" + key + "'"));
  ShardedTensor t;
  DCP_RETURN_IF_ERROR(PlaceByRankOffsets(key, data.shape(), fragmentation, prepend_axis_num, &t));
  t.dtype = data.dtype();
  t.key = std::move(key);
  t.data = std::move(data);
  t.replica_id = std::move(replica_id);
  return t;
}

Result<ShardedTensor> ShardedTensorFromRankOffsetsFlat(std::string key, TensorView flat_data,
                                                       Shape non_flat_local_shape,
                                                       std::vector<AxisFragmentation> fragmentation,
                                                       FlatRange range, ReplicaId replica_id,
                                                       int prepend_axis_num) {
  auto error = [&](const std::string& what) {
    return Status::InvalidArgument("sharded tensor '" + key + "': " + what);
  };
  DCP_RETURN_IF_ERROR(flat_data.Validate().Annotate("sharded tensor '" + key + "'"));
  for (int64_t d : non_flat_local_shape) {
    if (d < 0) return error("local shape " + ShapeToString(non_flat_local_shape) + " has a negative extent");
  }
  const int64_t numel = NumElements(non_flat_local_shape);
  const std::string range_text = "[" + std::to_string(range.begin) + ", " + std::to_string(range.end) + ")";
  if (range.begin < 0 || range.begin > range.end || range.end > numel) {
    return error("flattened range " + range_text + " is not within [0, " + std::to_string(numel) +
                 "] of local shape " + ShapeToString(non_flat_local_shape));
  }
  if (flat_data.shape().size() != 1 || flat_data.shape()[0] != range.size()) {
    return error("flat data of shape " + ShapeToString(flat_data.shape()) + " must be 1-D with " +
                 std::to_string(range.size()) + " elements for flattened range " + range_text);
  }
  ShardedTensor t;
  DCP_RETURN_IF_ERROR(PlaceByRankOffsets(key, non_flat_local_shape, fragmentation, prepend_axis_num, &t));
  t.dtype = flat_data.dtype();
  t.key = std::move(key);
  t.data = std::move(flat_data);
  t.replica_id = std::move(replica_id);
  t.flattened_range = range;
  return t;
}

std::string ObjectUniqueKey(const std::string& key, const Shape& global_offset, const Shape& global_shape) {
  std::string s = key + "/shard_";
  for (size_t i = 0; i < global_offset.size(); ++i) {
    if (i) s += ".";
    s += std::to_string(global_offset[i]);
  }
  s += "_";
  for (size_t i = 0; i < global_shape.size(); ++i) {
    if (i) s += ".";
    s += std::to_string(global_shape[i]);
  }
  return s;
}

}  // namespace dcp
