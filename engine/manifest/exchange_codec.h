// Copyright (c) dcp authors.
//
// What each rank declares it holds at the start of a put, and the codec for
// exchanging it between ranks (FlatBuffers, never persisted). Every rank
// receives every declaration and validates the global picture itself, so all
// ranks reach the same verdict without a coordinator.
//
// Decoding verifies the buffer (a peer may be buggy, not malicious); a bad
// buffer is Internal, naming the sending rank.
//
// Thread safety: value types and pure functions.

#ifndef DCP_ENGINE_MANIFEST_EXCHANGE_CODEC_H_
#define DCP_ENGINE_MANIFEST_EXCHANGE_CODEC_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/status.h"
#include "dcp/types.h"
#include "engine/codec/checksum.h"

namespace dcp::manifest {

struct ShardDecl {
  std::string key;
  DType dtype = DType::kFloat32;
  Shape global_shape;
  Box box;  // global coordinates, prepended axes included
  bool main_replica = true;
  // Set for a flat shard: the slice [begin, end) of the row-major flattening
  // of `box` it holds (box is the non-flat local box).
  std::optional<FlatRange> flattened_range;
};

struct ObjectDecl {
  std::string key;
  Shape global_shape;
  Shape global_offset;
  bool main_replica = true;
};

struct RankDecl {
  std::vector<ShardDecl> tensors;
  std::vector<ObjectDecl> objects;
  codec::Hash128 common_state_hash;
};

std::string EncodeRankDecl(const RankDecl& d);
Result<RankDecl> DecodeRankDecl(std::string_view bytes, int from_rank);

}  // namespace dcp::manifest

#endif  // DCP_ENGINE_MANIFEST_EXCHANGE_CODEC_H_
