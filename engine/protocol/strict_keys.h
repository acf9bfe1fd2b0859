// Copyright (c) dcp authors.
//
// Strict key handling of a get (LoadOptions::strict, dcp/options.h): which
// requested keys the step does not hold (unexpected, per rank), which keys of
// the step no rank requested (missing, the same on every rank; never the
// engine integrations' own objects `__torch_dcp__` and `__dcp_step_directory__`), and what to
// do about them — log, raise, return or ignore, as Megatron-Core's
// StrictHandling.
//
// Keys are ShardedTensor::key and ShardedObject::key. The step's keys are its
// tensor keys and object keys, sorted without repeats; the union of what the
// ranks requested is a bitmap over that list, OR-ed on rank 0 (one gather and
// one broadcast of ceil(keys / 8) bytes per rank, never of key strings).
//
// Thread safety: one call per rank, on the get's thread.

#ifndef DCP_ENGINE_PROTOCOL_STRICT_KEYS_H_
#define DCP_ENGINE_PROTOCOL_STRICT_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/status.h"
#include "dcp/reports.h"
#include "engine/manifest/manifest.h"
#include "engine/sharding/flatten.h"

namespace dcp::protocol {

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
// The messages (engine/wire/wire.h), exposed for the fuzzer. What each rank
// sends rank 0: its status before the check, whether it sent a bitmap and the
// bitmap of the step's keys it requested, how many unexpected keys it has and
// the first kListedKeys of them.
struct KeyCheckReport {
  Status local;
  bool has_bitmap = false;
  std::string bitmap;
  uint64_t unexpected = 0;
  std::vector<std::string> listed;
};
constexpr size_t kListedKeys = 16;
std::string EncodeKeyCheckReport(const KeyCheckReport& r);
// Internal naming rank `from` if malformed.
Status DecodeKeyCheckReport(std::string_view bytes, int from, KeyCheckReport* r);
// What rank 0 broadcasts: the verdict and, if OK, the union of the bitmaps.
std::string EncodeKeyCheckVerdict(const Status& verdict, std::string_view union_bitmap);
Status DecodeKeyCheckVerdict(std::string_view bytes, Status* verdict, std::string* union_bitmap);

Status ApplyStrictHandling(Communicator* comm, StrictHandling mode, uint64_t step, const manifest::StepManifest* m,
                           const Status& local, sharding::FlatRequest* request, LoadResult* result);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_STRICT_KEYS_H_
