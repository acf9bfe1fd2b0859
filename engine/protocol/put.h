// Copyright (c) dcp authors.
//
// The put protocol (collective), as a write session:
//   BeginStep  rank 0 checks the step, picks the generation and reads the
//              base step (the latest committed one) for incremental writes;
//              one all-gather agrees on every rank's checks and carries the
//              generation and every rank's step (ranks that disagree on the
//              step fail together); rank 0 then broadcasts the base manifest,
//              if there is one
//   WritePart  A. local validation (view vs declaration, offsets, duplicates)
//              B. exchange of shard declarations (two all-gathers, the first
//                 carrying the agreement on A and the replica signatures;
//                 in Put, BeginStep's all-gather carries those instead, and
//                 B is one all-gather); global validation on every
//                 rank from the same gathered bytes, including that the
//                 part's keys are new to the step: the same verdict
//                 everywhere, without a round
//              C. each rank writes its main-replica chunks into its own rank
//                 store (skipping chunks unchanged since the base step); a
//                 rank whose non-main shards do not match its replica set
//                 (the one local check of B) writes nothing and fails here;
//                 one agreement on the outcome
//   Commit     rank 0 merges the fragments and publishes the manifest
//              (commit.h: a gather and a broadcast)
// Put is one session with one part, in four rounds, five when an incremental
// put has a base: A runs before BeginStep, whose all-gather carries A's
// verdict and signature (BeginStep's own checks still come first: the
// agreement on A is reached after them, from the same gathered bytes), and
// its write outcome rides on the commit's gather instead of an agreement of
// its own.
//
// Collective discipline: every rank runs the same sequence of collectives
// whatever happens locally; a local error is carried to the next agreement
// and all ranks return there together, with the same status.

#ifndef DCP_ENGINE_PROTOCOL_PUT_H_
#define DCP_ENGINE_PROTOCOL_PUT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/reports.h"
#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "dcp/value.h"
#include "engine/manifest/manifest.h"
#include "engine/protocol/store_context.h"
#include "engine/write/shard_writer.h"

namespace dcp::protocol {

// An open write session (BeginStep .. Commit, or abandoned).
struct PutSession {
  Communicator* comm = nullptr;  // the collectives of every call of the session
  uint64_t step = 0;
  uint64_t generation = 0;
  SaveOptions options;
  std::shared_ptr<const manifest::StepManifest> base;    // incremental base (may be null)
  std::map<std::string, manifest::TensorEntry> tensors;  // keys written so far (every rank)
  std::set<std::string> object_cells;
  manifest::StepManifest fragment;  // this rank's chunks and objects
  Value common = Value::Map();      // rank 0: the merged common state
  std::string common_encoded;       // rank 0, one part: its common state, encoded
  uint32_t parts = 0;
  Status broken;  // a failed write ends the session
  SaveReport report;
};

// For a failed agreement whose payloads start with each rank's step (a
// u64): rank 0's step where its payload arrived, else `own`. Ranks whose
// steps differ (one failed to resolve its own) then name the failure alike.
uint64_t StepOfRank0(const std::vector<std::string>& payloads, uint64_t own);

// Collective over `comm`: starts a session for `step`. `local` is the
// caller's verdict on this rank (may it write now?); any rank's failure
// fails every rank. `call` names the API call ("Put", "BeginStep"): a rank in
// another call fails every rank (coord::AgreeAndGather). REQUIRES:
// store->own() is not null where `local` is OK.
// `rider`, this rank's, rides on the all-gather; `riders` (if not null) gets
// every rank's, in rank order, where the session starts.
Result<std::unique_ptr<PutSession>> BeginStep(Communicator* comm, StoreContext* store, uint64_t step,
                                              const SaveOptions& options, const Status& local, std::string_view call,
                                              std::string_view rider = {}, std::vector<std::string>* riders = nullptr);

// Collective over `comm`: writes one part of the step. `session` may be null
// or belong to another communicator on some rank (an error there, agreed on
// like any other). With `unagreed` (Put), this rank's write outcome is left
// there for the commit's gather instead of being agreed on (one round less).
Status WritePart(Communicator* comm, StoreContext* store, PutSession* session, const StateDict& part,
                 const Status& local, SaveReport* report, Status* unagreed);

// One process (a communicator of size 1): writes a part whose tensors the
// caller declared and checked itself (an import: `entries` gives each tensor's
// key, dtype and global shape, `request` its pieces, which must tile it; the
// commit refuses a manifest they do not tile), with `common` as the step's
// common state. Instead of WritePart, once per session.
Status WriteLocalPart(StoreContext* store, PutSession* session, std::vector<manifest::TensorEntry> entries,
                      write::WriteRequest request, const Value& common, SaveReport* report);

// Collective over session->comm, after the caller agreed that every rank may
// commit: merges and publishes. `written` is this rank's unagreed write
// outcome (Put) or OK. The session ends either way.
Status Commit(StoreContext* store, std::unique_ptr<PutSession> session, const Status& written, SaveReport* report);

// Collective: BeginStep, one WritePart, Commit. `local` as BeginStep's.
Status Put(Communicator* comm, StoreContext* store, uint64_t step, const StateDict& state, const SaveOptions& options,
           const Status& local, SaveReport* report);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_PUT_H_
