// Copyright (c) dcp authors.
//
// Garbage collection of one rank store: removes every record that no
// committed step references.
//
// A generation (one put) with no referenced record loses its table files at
// once (no data is read or rewritten). A generation some of whose records are
// still referenced (by steps that deduplicated against it) loses the others:
// its index records (written by the put, listing its record keys) say which
// records exist; the dead ones are deleted, the index rewritten to the live
// ones, and the generation's range compacted, rewriting only its live bytes.
//
// REQUIRES: the caller holds the store's writer lock (no put is in progress
// anywhere), so a generation without references is garbage, not a put that
// has yet to commit.
//
// Thread safety: one call per rank store at a time.

#ifndef DCP_ENGINE_STORE_GC_H_
#define DCP_ENGINE_STORE_GC_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "dcp/status.h"
#include "engine/store/rank_store.h"

namespace dcp::storage {

// The record keys committed steps reference in one rank store, by generation.
using LiveRecords = std::map<uint64_t, std::set<std::string>>;

struct RankGcStats {
  uint64_t generations_removed = 0;
  uint64_t records_removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

Status CollectRankStore(RankStore* store, const LiveRecords& live, RankGcStats* stats);

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_GC_H_
