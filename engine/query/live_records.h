// Copyright (c) dcp authors.
//
// The records committed steps reference, per rank store and generation: what
// garbage collection keeps (storage::CollectRankStore) and what dcp-inspect gc
// surveys against.
//
// Thread safety: a pure function.

#ifndef DCP_ENGINE_QUERY_LIVE_RECORDS_H_
#define DCP_ENGINE_QUERY_LIVE_RECORDS_H_

#include <cstdint>
#include <functional>
#include <map>

#include "engine/manifest/manifest.h"
#include "engine/store/gc.h"

namespace dcp::query {

// Adds the records `m` references to `live` (rank store -> generation ->
// record key -> stored size), only those of rank stores `wanted` accepts
// (every one if it is empty).
void AddLiveRecords(const manifest::StepManifest& m, const std::function<bool(uint32_t rank)>& wanted,
                    std::map<uint32_t, storage::LiveRecords>* live);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_LIVE_RECORDS_H_
