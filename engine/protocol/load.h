// Copyright (c) dcp authors.
//
// The load protocols: a collective get of a state dict, and the one-process
// reads (one region, whole tensors).
//
//   Get   rank 0 reads the step manifest and broadcasts it with its read
//         status; every rank verifies and indexes the same bytes; strict key
//         handling (strict_keys.h) if asked for; each rank plans its own
//         reads through the chunk index, reads and assembles them (or, with
//         read_once, takes part in the read-once exchange); one agreement on
//         the outcome. Two rounds in the common case.
//   Read, LoadPlain   not collective: this process reads the manifest itself
//         and runs the same planning and assembly.
//
// Records of a step deleted under a reader go missing: such a load fails with
// NotFound ("was deleted while it was being read"), not DataLoss.

#ifndef DCP_ENGINE_PROTOCOL_LOAD_H_
#define DCP_ENGINE_PROTOCOL_LOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/plain.h"
#include "dcp/reports.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "engine/protocol/store_context.h"
#include "engine/query/chunk_index.h"

namespace dcp::protocol {

// The verified manifest of `step` and its index, read by this process alone.
// DataLoss for a step a repair marked damaged.
Result<std::shared_ptr<query::StepIndex>> LoadStepLocal(StoreContext* store, uint64_t step);

// Collective: loads `step` into `request` (this rank's entries). `local` is
// the caller's status on this rank (e.g. an argument it refused): a failure
// there fails the get on every rank, in the get's own rounds. The same status
// on every rank.
Result<LoadResult> Get(Communicator* comm, StoreContext* store, uint64_t step, StateDict* request,
                       const LoadOptions& options, const Status& local);

// Not collective: `region` of tensor `key` of `step` into `dest`.
Status Read(StoreContext* store, uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
            const LoadOptions& options);

// Not collective: whole tensors (every one, or those `keys` name) in buffers
// allocated here, objects and the common state.
Result<PlainState> LoadPlain(StoreContext* store, uint64_t step, const std::vector<std::string>& keys,
                             const LoadOptions& options);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_LOAD_H_
