// Copyright (c) dcp authors.
//
// The store's lifecycle protocols (collective): deleting steps, retention,
// removing tensors from a step, garbage collection. Rank 0 changes the
// catalog and broadcasts the outcome; for garbage collection every rank
// cleans its own rank store (and those of ranks beyond the world size), from
// the references of every committed step.
//
// Each takes `local`, the caller's verdict on this rank (may it change the
// store now?): one agreement on it comes first, so a refusal on any rank
// refuses on every rank before anything changes.

#ifndef DCP_ENGINE_PROTOCOL_MAINTENANCE_H_
#define DCP_ENGINE_PROTOCOL_MAINTENANCE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/reports.h"
#include "dcp/status.h"
#include "engine/protocol/store_context.h"

namespace dcp::protocol {

Status DeleteStep(Communicator* comm, StoreContext* store, uint64_t step, const Status& local);

// The steps deleted, the same on every rank.
Result<std::vector<uint64_t>> ApplyRetention(Communicator* comm, StoreContext* store, const RetentionPolicy& policy,
                                             const Status& local);

// The keys removed, the same on every rank.
Result<std::vector<std::string>> RemoveTensors(Communicator* comm, StoreContext* store, uint64_t step,
                                               std::string_view key_prefix, const RemoveTensorsOptions& options,
                                               const Status& local);

// `report` is this rank's share (its rank stores); rank 0's includes the
// temporary files it swept.
Status CollectGarbage(Communicator* comm, StoreContext* store, const GcOptions& options, const Status& local,
                      GcReport* report);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_MAINTENANCE_H_
