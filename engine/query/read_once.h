// Copyright (c) dcp authors.
//
// Read-once load (LoadOptions::read_once): every chunk that several ranks
// need is read from its rank store by one of them and its stored record is
// sent over the communicator to the others; chunks one rank needs alone are
// read by it directly, as ExecuteReadPlan would.
//
// Protocol (collective; the same sequence of collectives on every rank,
// whatever happens locally):
//   1. All-gather of each rank's needs (the manifest ordinals of the chunks
//      in its read plan, delta-encoded), whether it can take part, and its
//      round budget. If any rank cannot (its planning failed), every rank
//      skips to the end: nothing is read.
//   2. Every rank computes the same schedule (read_once_schedule.h): who reads
//      each shared chunk, and the exchange rounds, with the smallest budget
//      any rank proposed.
//   3. Rounds, one all-to-all each. A reader fetches its chunks of the round,
//      checks them against the manifest and decodes them into its own
//      destinations (so it never sends a record it could not verify), then
//      sends the stored record to each receiver; a receiver checks header and
//      checksum against the manifest again (end to end) and decodes it into
//      its destinations. The next round's records are fetched while the
//      current round is exchanged and decoded. Direct reads run meanwhile on
//      the same thread pool.
//      Every message starts with a flag saying whether its sender has failed
//      so far; a reader that could not read a chunk sends an "unavailable"
//      marker in its place. After the round in which any rank reports a
//      failure, every rank (having received the same flags) stops: no rank
//      waits for another.
//   4. The caller agrees on the outcome (coord::AgreeOnStatus), so an I/O
//      error, a corrupt record or a bad request on one rank fails the load on
//      every rank with the same status.
//
// Memory per rank: direct reads hold at most half of max_inflight_bytes
// (record plus decoded bytes, as ExecuteReadPlan); each round at most a
// quarter of the smallest max_inflight_bytes of any rank, two rounds at a
// time (one being read, one exchanged and decoded). A chunk larger than its
// share is still admitted alone. Transport copies (MPI buffers) come on top.
//
// Thread safety: one call at a time per communicator.

#ifndef DCP_ENGINE_QUERY_READ_ONCE_H_
#define DCP_ENGINE_QUERY_READ_ONCE_H_

#include <cstdint>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/status.h"
#include "dcp/reports.h"
#include "engine/base/thread_pool.h"
#include "engine/manifest/manifest.h"
#include "engine/query/planner.h"
#include "engine/query/store_set.h"

namespace dcp::query {

// Collective over `comm`: every rank calls it, even one whose request failed
// (`local` not OK; `manifest` may then be null). `plan` is this rank's read
// plan for step `manifest` (planned through a StepIndex of it); `stores`
// reads records as of the manifest's generation.
//
// Returns this rank's outcome, for the caller to agree on: `local` if it was
// not OK; else OK or the first error of this rank's own reads and decodes
// (DataLoss naming key, offset, rank store and, for received records, the
// sending rank; IOError; Internal for a malformed message from a peer).
// Another rank's failure is not reported here (it is that rank's to report);
// it only ends the exchange early. A communicator failure is returned as is.
// Adds what this rank read, sent and received to *report (may be null).
// Reads and decodes run on `pool` (the store's; null: one made for the call).
//
// REQUIRES: options.read_once agrees on every rank (the collectives differ).
Status ExecuteReadOnce(Communicator* comm, StoreSet* stores, const manifest::StepManifest* manifest,
                       const ReadPlan& plan, const Status& local, const LoadOptions& options, LoadReport* report,
                       base::ThreadPool* pool = nullptr);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_READ_ONCE_H_
