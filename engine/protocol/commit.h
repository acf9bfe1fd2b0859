// Copyright (c) dcp authors.
//
// The commit protocol of a put (after every rank has written its records):
//
//   1. every rank sends rank 0 its write status and its manifest fragment
//      (the chunks and objects it wrote);
//   2. rank 0, if every rank succeeded, merges the fragments into the step
//      manifest, checks its invariants, and publishes it atomically (temp
//      file, fsync, rename, directory fsync; then LATEST);
//   3. rank 0 broadcasts the outcome, and every rank returns it.
//
// Records are durable before step 1 (each rank's ingest syncs them), so a
// published manifest never points at bytes that could vanish in a crash. If
// any rank failed, nothing is published and the step does not exist; the
// records already written are unreferenced garbage for GC.
//
// Collective: every rank calls CommitStep, whatever its local status.

#ifndef DCP_ENGINE_PROTOCOL_COMMIT_H_
#define DCP_ENGINE_PROTOCOL_COMMIT_H_

#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"
#include "dcp/status.h"
#include "engine/manifest/manifest.h"

namespace dcp::protocol {

struct CommitRequest {
  std::string root;
  // Rank 0 only: the manifest without chunks or objects (step, generation,
  // world size, tensor entries with dtype and global shape, common state).
  manifest::StepManifest skeleton;
};

// Rank 0's merge (step 2 without publishing): the skeleton plus every rank's
// fragment (`payloads[r]`: manifest::EncodeManifestPayload of rank r's
// fragment; decoded in place where it is 8-byte aligned, copied otherwise),
// canonicalized and checked. With `own`, that is rank 0's fragment, never
// encoded, and payloads[0] is ignored. Internal if a fragment does not
// decode, names a tensor the skeleton lacks, or the result breaks a manifest
// invariant (a bug in dcp: such a manifest is never written). Pure; exposed
// for the planning benchmark (bench/planner_bench.cc).
Result<manifest::StepManifest> MergeFragments(const manifest::StepManifest& skeleton,
                                              const std::vector<std::string_view>& payloads,
                                              manifest::StepManifest* own = nullptr);

// What a rank sends rank 0 in step 1 (engine/wire): its status and, if OK,
// seven zero bytes and its fragment's payload, so that the payload starts 8
// bytes into the message and decodes where it lies. DecodeCommitMessage is
// Internal naming rank `from` if the message is malformed;
// `*fragment_payload` points into `bytes`.
std::string EncodeCommitMessage(const Status& status, std::string_view fragment_payload);
Status DecodeCommitMessage(std::string_view bytes, int from, Status* status, std::string_view* fragment_payload);

// Collective. Returns the same status on every rank: OK once the step is
// published; the lowest failing rank's error otherwise. Rank 0's own
// `fragment` is merged as it is (moved), the others' are encoded and sent.
Status CommitStep(Communicator* comm, const CommitRequest& request, const Status& local_status,
                  manifest::StepManifest fragment);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_COMMIT_H_
