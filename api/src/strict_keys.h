// Copyright (c) dcp authors.
//
// Strict key handling of a get (LoadOptions::strict, dcp/options.h): which
// requested keys the step does not hold (unexpected, per rank), which keys of
// the step no rank requested (missing, the same on every rank), and what to
// do about them — log, raise, return or ignore, as Megatron-Core's
// StrictHandling.
//
// Keys are ShardedTensor::key and ShardedObject::key. The step's keys are its
// tensor keys and object keys, sorted without repeats; the union of what the
// ranks requested is a bitmap over that list, OR-ed on rank 0 (one gather and
// one broadcast of ceil(keys / 8) bytes per rank, never of key strings).
//
// Thread safety: one call per rank, on the get's thread.

#ifndef DCP_API_SRC_STRICT_KEYS_H_
#define DCP_API_SRC_STRICT_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/status.h"
#include "dcp/store.h"
#include "engine/manifest/manifest.h"
#include "engine/sharding/flatten.h"

namespace dcp {

// The step's keys (tensor keys and object keys), sorted, without repeats.
// The views point into `m`.
std::vector<std::string_view> StepKeys(const manifest::StepManifest& m);

// Applies `mode` to `request` (this rank's flattened get request) against
// `m`, the step's manifest (null where `local` is not OK), and returns the
// status the get goes on with.
//
// Collective — every rank calls it, whatever its `local` — in kRaiseUnexpected
// and in the modes that need missing keys (kLogAll, kRaiseAll, kReturnAll);
// there the returned status is the same on every rank: the lowest failing
// rank's `local` (as coord::AgreeOnStatus), else the raised error (NotFound
// naming each rank's unexpected keys; InvalidArgument naming the missing keys
// when only those are raised; a NotFound for unexpected keys also names the
// missing ones in kRaiseAll). In the other modes it is local and returns
// `local`.
//
// When the returned status is OK: unexpected entries are removed from
// *request (their destinations are never written); result->unexpected_keys
// and missing_keys are filled in the RETURN modes; the LOG modes have written
// one "dcp: ..." line to stderr per rank with unexpected keys, and rank 0 one
// for the missing keys. kAssumeOkUnexpected does nothing and returns `local`.
//
// REQUIRES: the same `mode` on every rank.
Status ApplyStrictHandling(Communicator* comm, StrictHandling mode, uint64_t step, const manifest::StepManifest* m,
                           const Status& local, sharding::FlatRequest* request, LoadResult* result);

}  // namespace dcp

#endif  // DCP_API_SRC_STRICT_KEYS_H_
