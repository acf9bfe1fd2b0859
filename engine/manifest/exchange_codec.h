// Copyright (c) dcp authors.
//
// What each rank declares it holds at the start of a put, and the codec for
// exchanging it between ranks (FlatBuffers, never persisted). Every rank
// receives every declaration and validates the global picture itself, so all
// ranks reach the same verdict without a coordinator.
//
// Compact exchange (docs/format.md 4.1, step 2). With data parallelism most
// of what a rank holds are non-main replicas, and the DP ranks of one model
// position hold the same ones; they are sent, decoded and checked once:
//   round 1  every rank all-gathers the signature of its non-main shards
//            (EncodeSignature: their count and the XXH3-128 of their
//            encoding);
//   round 2  every rank all-gathers EncodeExchangeDecl: its main shards, its
//            objects and common-state hash, and its non-main shards only if
//            it is the lowest rank with its signature (the representative).
// AssembleGlobalDecls then gives every rank the same GlobalDecls; a rank
// whose own non-main shards differ from its representative's (a signature
// collision) finds out with CheckOwnReplicas.
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

// Field by field (key, dtype, global shape, box, main flag, flat range).
bool SameShard(const ShardDecl& a, const ShardDecl& b);

// The round-1 message: what a rank's non-main shards are, in 24 bytes.
struct ReplicaSignature {
  uint64_t count = 0;    // non-main shards
  codec::Hash128 hash;   // of their encoding (zero if none)
  friend bool operator==(const ReplicaSignature& a, const ReplicaSignature& b) {
    return a.count == b.count && a.hash.lo == b.hash.lo && a.hash.hi == b.hash.hi;
  }
};
// A rank's declaration split for the compact exchange.
struct SplitDecl {
  RankDecl own;                     // main shards (declaration order), objects, common-state hash
  std::vector<ShardDecl> replicas;  // non-main shards (declaration order)
  ReplicaSignature signature;
};
SplitDecl SplitRankDecl(RankDecl d);

// Round 1. A bad buffer is Internal naming the sending rank.
std::string EncodeSignature(const ReplicaSignature& s);
Result<ReplicaSignature> DecodeSignature(std::string_view bytes, int from_rank);

// For each rank, the lowest rank with an equal signature (itself if none is
// lower); -1 for a rank without non-main shards.
std::vector<int> Representatives(const std::vector<ReplicaSignature>& signatures);

// Round 2: `s.own` plus, if `representative`, `s.replicas`.
std::string EncodeExchangeDecl(const SplitDecl& s, bool representative);

// What every rank knows after the exchange: each rank's own declaration
// (main shards, objects, common-state hash) and the distinct sets of non-main
// shards, each held by the ranks listed with it (ascending; the first is its
// representative).
struct GlobalDecls {
  std::vector<RankDecl> ranks;
  struct ReplicaSet {
    std::vector<ShardDecl> shards;
    std::vector<int> holders;
  };
  std::vector<ReplicaSet> replica_sets;  // ordered by representative
};

// Decodes round 2 (`messages[r]` from rank r) given round 1. Internal naming
// the rank if a message does not decode, a non-representative sends non-main
// shards, or a representative's count differs from its signature's. The same
// bytes give the same result (or error) on every rank.
Result<GlobalDecls> AssembleGlobalDecls(const std::vector<ReplicaSignature>& signatures,
                                        const std::vector<std::string>& messages);

// InvalidArgument naming `rank` if `mine` (its non-main shards) differs from
// the set `global` lists for it.
Status CheckOwnReplicas(const GlobalDecls& global, int rank, const std::vector<ShardDecl>& mine);

// Every rank's full declaration (own shards, then its set's), as the plain
// exchange would have given it: for tests and small worlds.
std::vector<RankDecl> ExpandGlobalDecls(const GlobalDecls& global);

}  // namespace dcp::manifest

#endif  // DCP_ENGINE_MANIFEST_EXCHANGE_CODEC_H_
