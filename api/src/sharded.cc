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

Result<ShardedTensor> ShardedTensorFromRankOffsets(std::string key, TensorView data,
                                                   std::vector<AxisFragmentation> fragmentation,
                                                   ReplicaId replica_id, int prepend_axis_num) {
  auto error = [&](const std::string& what) {
    return Status::InvalidArgument("sharded tensor '" + key + "': " + what);
  };
  DCP_RETURN_IF_ERROR(data.Validate().Annotate("sharded tensor '" + key + "'"));
  if (prepend_axis_num < 0) return error("prepend_axis_num is negative");

  ShardedTensor t;
  t.dtype = data.dtype();
  t.local_shape = data.shape();
  const size_t rank = static_cast<size_t>(prepend_axis_num) + data.shape().size();
  t.global_shape.assign(static_cast<size_t>(prepend_axis_num), 1);
  t.global_shape.insert(t.global_shape.end(), data.shape().begin(), data.shape().end());
  t.global_offset.assign(rank, 0);
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
    const int64_t local_len = f.axis < prepend_axis_num ? 1 : data.shape()[f.axis - prepend_axis_num];
    t.global_shape[f.axis] = f.fragments * local_len;
    t.global_offset[f.axis] = f.rank_offset * local_len;
  }
  t.key = std::move(key);
  t.data = std::move(data);
  t.prepend_axis_num = prepend_axis_num;
  t.replica_id = std::move(replica_id);
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
