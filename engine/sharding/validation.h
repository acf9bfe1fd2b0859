// Copyright (c) dcp authors.
//
// Validation of sharded state, local and global.
//
// Local (each rank, before any exchange): every leaf is well formed — view
// agrees with the declared dtype and local shape (for a flat shard: the view
// is 1-D with end - begin elements and 0 <= begin <= end <= prod(local
// shape)), ranks of shapes and offsets agree, the shard lies inside the
// global shape — and no (key, offset[, flat range]) of a shard holding
// elements repeats on the rank.
// Errors name the state-dict path, the key and the offset.
//
// Global (every rank, on every rank's declarations, deterministically, so all
// ranks reach the same verdict): all shards of a key agree on dtype and global
// shape, and are all flat or all not; flat shards at one offset agree on the
// box, and the main replicas' ranges there tile its flattening exactly (the
// first overlap or hole is named); the main replicas' boxes (one per offset
// for flat shards) cover every element exactly once (regular or not); every
// object grid cell has exactly one main replica and no cell is missing.
// Cost: O(n log n) in the number of distinct shards (ranges are sorted, never compared
// pairwise; cover checks go through array::CheckExactCover).
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_SHARDING_VALIDATION_H_
#define DCP_ENGINE_SHARDING_VALIDATION_H_

#include <string>
#include <vector>

#include "dcp/sharded.h"
#include "dcp/status.h"
#include "engine/codec/checksum.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest.h"
#include "engine/sharding/flatten.h"

namespace dcp::sharding {

// Objects larger than this are refused (they are stored as one record).
constexpr uint64_t kMaxObjectBytes = uint64_t{1} << 30;

Status ValidateTensorLeaf(const std::string& path, const ShardedTensor& t);
// A load's destination `view` (named by `what`): refused if elements share
// memory (TensorView::SharedAxis), as torch's copy_ refuses.
Status ValidateDestination(const std::string& what, const TensorView& view);
Status ValidateObjectLeaf(const std::string& path, const ShardedObject& o);

// All leaves; a save also refuses a (key, offset) or object cell that
// appears twice (a load may fill the same region into several destinations).
Status ValidateLocalSave(const FlatState& state);
Status ValidateLocalLoad(const FlatRequest& request);

// This rank's declaration of what it holds.
manifest::RankDecl DeclareState(const FlatState& state, const codec::Hash128& common_state_hash);

// Checks the global picture. On success returns one entry per tensor key
// (key, dtype, global shape; no chunks yet), sorted by key.
Result<std::vector<manifest::TensorEntry>> ValidateGlobal(const std::vector<manifest::RankDecl>& decls);

// The same checks on the compact exchange's result (exchange_codec.h): each
// set of non-main shards is checked once, as declared by its representative
// (the lowest rank holding it), so the cost follows the distinct shards, not
// the ranks. Same verdict as ValidateGlobal(ExpandGlobalDecls(global)), errors
// naming the same ranks.
Result<std::vector<manifest::TensorEntry>> ValidateGlobal(const manifest::GlobalDecls& global);

}  // namespace dcp::sharding

#endif  // DCP_ENGINE_SHARDING_VALIDATION_H_
