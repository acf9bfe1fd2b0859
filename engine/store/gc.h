// Copyright (c) dcp authors.
//
// Garbage collection of one rank store: removes records that no committed
// step references.
//
// A generation (one put) with no referenced record loses its table files at
// once (no data is read or rewritten). A generation some of whose records are
// still referenced (by steps that deduplicated against it) loses the others
// once enough of it is dead to pay for rewriting the rest: its index records
// (written by the put, listing its record keys) say which records exist; the
// dead ones are deleted, the index rewritten to the live ones, and the
// generation's range compacted. Below the threshold nothing is touched and
// the dead bytes are reported as pending (a later collection, after more
// steps are gone, reclaims them).
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

// The records committed steps reference in one rank store, by generation:
// record key -> stored size.
using LiveRecords = std::map<uint64_t, std::map<std::string, uint64_t>>;

struct RankGcStats {
  uint64_t generations_removed = 0;
  uint64_t records_removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  uint64_t bytes_pending = 0;  // dead bytes left in partly referenced generations
};

// A partly referenced generation is compacted only when at least
// `compact_dead_fraction` of its table bytes are dead.
Status CollectRankStore(RankStore* store, const LiveRecords& live, double compact_dead_fraction,
                        RankGcStats* stats);

// What CollectRankStore would do now, changing nothing (dcp-inspect gc); a
// read instance will do.
struct RankGcSurvey {
  uint64_t table_bytes = 0;
  uint64_t unreferenced_generations = 0;  // whole puts the next collection drops...
  uint64_t unreferenced_bytes = 0;        // ...and their table bytes
  uint64_t partial_generations = 0;       // puts with dead records some step still shares
  uint64_t dead_records = 0;
  uint64_t compacted_bytes = 0;  // dead bytes of those at >= compact_dead_fraction (the next collection)
  uint64_t pending_bytes = 0;    // dead bytes below it (a collection with fraction 0 frees them)
};
Status SurveyRankStore(const RankStore& store, const LiveRecords& live, double compact_dead_fraction,
                       RankGcSurvey* survey);

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_GC_H_
