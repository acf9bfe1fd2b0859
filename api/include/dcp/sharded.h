// Copyright (c) dcp authors.
//
// ShardedTensor and ShardedObject: one rank's piece of a global tensor or of a
// grid of opaque objects, with the same meaning as in Megatron-Core
// dist_checkpointing.
//
// A ShardedTensor names a global tensor by `key` (independent of where it sits
// in the state dict) and places the local `data` view at `global_offset` of a
// tensor of `global_shape`. `prepend_axis_num` leading axes of the global
// tensor are virtual size-1 axes of the local data (used to stack layers along
// a pipeline "layer" axis). Only main replicas (replica_id all zero) are
// written; other replicas are checked for consistency and skipped.
//
// A ShardedObject is opaque bytes placed on a grid (global_shape,
// global_offset). It is not reshardable: a load asks for exactly a saved cell.
//
// Thread safety: values; the data a ShardedTensor views is the caller's.

#ifndef DCP_SHARDED_H_
#define DCP_SHARDED_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dcp/status.h"
#include "dcp/tensor_view.h"
#include "dcp/types.h"

namespace dcp {

// A replica id is a tuple of ints; the shard is the main replica iff all are 0
// (the empty tuple counts as main). Megatron layers use (PP, TP, DP).
using ReplicaId = std::vector<int64_t>;
bool IsMainReplica(const ReplicaId& id);

// A range [begin, end) of element indices, 0 <= begin <= end.
struct FlatRange {
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
  friend bool operator==(const FlatRange&, const FlatRange&) = default;
};

struct ShardedTensor {
  std::string key;
  // The local shard: at save the source, at load the destination.
  TensorView data;
  // Declared element type and local shape; must agree with `data`.
  DType dtype = DType::kFloat32;
  Shape local_shape;
  // Global shape and offset of the local shard, prepended axes included.
  Shape global_shape;
  Shape global_offset;
  int prepend_axis_num = 0;
  ReplicaId replica_id;
  // Load only: tolerate a saved global shape that differs from `global_shape`
  // in extent (not in the number of axes): the part inside the saved tensor is
  // read, destination elements outside it are set to zero (vocabulary
  // padding changes). Without it a mismatch is an InvalidArgument error.
  bool allow_shape_mismatch = false;
  // Distributed-optimizer slices (Megatron v0.15 `flattened_range`): when set,
  // `local_shape` and `global_offset` describe the non-flat local box as usual,
  // and `data` is a 1-D view of `end - begin` elements holding elements
  // [begin, end) of the row-major flattening of that box. REQUIRES:
  // 0 <= begin <= end <= prod(local_shape); an empty range holds nothing.
  // All shards of one key are flat or none is; at save the main replicas'
  // ranges at each offset tile the box exactly.
  std::optional<FlatRange> flattened_range;

  bool is_main_replica() const { return IsMainReplica(replica_id); }
  // The region of the global tensor this shard covers: global_offset and
  // [1]*prepend_axis_num + local_shape.
  Box global_box() const;

  // A shard covering the whole tensor (offset 0), replica id {}.
  static ShardedTensor Whole(std::string key, TensorView data);
};

// One (axis, rank_offset, fragments) triple of ShardedTensorFromRankOffsets.
struct AxisFragmentation {
  int axis;             // axis of the global tensor (prepended axes included)
  int64_t rank_offset;  // this rank's index along the axis, in [0, fragments)
  int64_t fragments;    // number of equal pieces the axis is split into
};

// Megatron's ShardedTensor.from_rank_offsets: the global tensor is the local
// one with [1]*prepend_axis_num prepended, then each listed axis is split into
// `fragments` equal pieces of the local extent (1 for prepended axes), of
// which this shard is piece `rank_offset`.
//
// Returns InvalidArgument naming the key if an axis is out of range or listed
// twice, rank_offset < 0, fragments < 1 or rank_offset >= fragments, or if
// the view is malformed.
Result<ShardedTensor> ShardedTensorFromRankOffsets(std::string key, TensorView data,
                                                   std::vector<AxisFragmentation> fragmentation,
                                                   ReplicaId replica_id = {},
                                                   int prepend_axis_num = 0);

// Megatron's ShardedTensor.from_rank_offsets_flat: the geometry (global shape
// and offset) is that of ShardedTensorFromRankOffsets for a local tensor of
// `non_flat_local_shape`, and `flat_data` (1-D, range.size() elements) holds
// elements [range.begin, range.end) of its row-major flattening.
//
// Returns InvalidArgument naming the key for the errors of
// ShardedTensorFromRankOffsets, and if `flat_data` is not 1-D, its length
// differs from range.size(), or the range is not within
// [0, prod(non_flat_local_shape)].
Result<ShardedTensor> ShardedTensorFromRankOffsetsFlat(std::string key, TensorView flat_data,
                                                       Shape non_flat_local_shape,
                                                       std::vector<AxisFragmentation> fragmentation,
                                                       FlatRange range, ReplicaId replica_id = {},
                                                       int prepend_axis_num = 0);

// Megatron's unique key of an object cell: "<key>/shard_<o0>.<o1>_<s0>.<s1>".
std::string ObjectUniqueKey(const std::string& key, const Shape& global_offset, const Shape& global_shape);

struct ShardedObject {
  std::string key;
  // Save: the bytes to store. Load: filled with the saved bytes.
  std::string data;
  Shape global_shape;
  Shape global_offset;
  ReplicaId replica_id;

  bool is_main_replica() const { return IsMainReplica(replica_id); }
  std::string unique_key() const { return ObjectUniqueKey(key, global_offset, global_shape); }
};

}  // namespace dcp

#endif  // DCP_SHARDED_H_
