// Copyright (c) dcp authors.
//
// The assembler executes a ReadPlan: for each chunk it fetches the record from
// whichever rank store holds it, checks it against the manifest (header,
// size, checksum), decodes it and copies each planned region straight into
// its destination. Reads run on a thread pool with a bound on the record
// bytes in flight; a chunk that lands whole in a contiguous destination is
// decoded in place, with no intermediate buffer.
//
// Every failure names the tensor key, the chunk's offset, the rank store and
// its path; corrupt or missing records are DataLoss.
//
// Thread safety: one call at a time per StoreSet is not required; each call
// owns its pool.

#ifndef DCP_ENGINE_QUERY_ASSEMBLER_H_
#define DCP_ENGINE_QUERY_ASSEMBLER_H_

#include <cstdint>
#include <string>

#include "dcp/options.h"
#include "dcp/status.h"
#include "engine/manifest/manifest.h"
#include "engine/query/planner.h"
#include "engine/query/store_set.h"

namespace dcp::query {

// `generation` is the manifest's (for catching up read instances).
Status ExecuteReadPlan(StoreSet* stores, uint64_t generation, const ReadPlan& plan, const LoadOptions& options);

// Reads object `object` of a step into *out.
Status ReadObject(StoreSet* stores, uint64_t generation, const manifest::ObjectEntry& object, std::string* out);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_ASSEMBLER_H_
