// Copyright (c) dcp authors.

#include "engine/protocol/commit.h"

#include <chrono>
#include <map>

#include "engine/base/fault_injection.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/wire/wire.h"

namespace dcp::protocol {
namespace {

// Rank 0: merge and publish.
Status MergeAndPublish(const CommitRequest& request, const std::vector<std::string>& messages,
                       manifest::StepManifest* own) {
  std::vector<Status> statuses(messages.size());
  std::vector<std::string_view> fragments(messages.size());
  for (size_t r = 0; r < messages.size(); ++r) {
    DCP_RETURN_IF_ERROR(DecodeCommitMessage(messages[r], static_cast<int>(r), &statuses[r], &fragments[r]));
  }
  DCP_RETURN_IF_ERROR(coord::CombineStatuses(statuses));

  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, MergeFragments(request.skeleton, fragments, own));
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("put.before_publish", 0));
  return storage::PublishManifest(request.root, m.step, m.generation, manifest::EncodeManifest(m));
}

}  // namespace

std::string EncodeCommitMessage(const Status& status, std::string_view fragment_payload) {
  wire::Writer w;
  w.PutStatus(status);  // one byte when OK
  if (status.ok()) w.U32(0).U8(0).U8(0).U8(0).Raw(fragment_payload);
  return w.Finish();
}

Status DecodeCommitMessage(std::string_view bytes, int from, Status* status, std::string_view* fragment_payload) {
  wire::Reader in(bytes, "commit message from rank " + std::to_string(from));
  *status = in.GetStatus();
  *fragment_payload = std::string_view();
  if (status->ok() && in.ok()) {
    const bool zero = in.U32() == 0 && in.U8() == 0 && in.U8() == 0 && in.U8() == 0;
    if (!zero) in.Fail("padding before the fragment is not zero");
    *fragment_payload = in.Rest();
  }
  return in.Finish();
}

Result<manifest::StepManifest> MergeFragments(const manifest::StepManifest& skeleton,
                                              const std::vector<std::string_view>& payloads,
                                              manifest::StepManifest* own) {
  manifest::StepManifest m = skeleton;
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < m.tensors.size(); ++i) position[m.tensors[i].key] = i;
  for (size_t r = 0; r < payloads.size(); ++r) {
    manifest::StepManifest f;
    if (r == 0 && own != nullptr) {
      f = std::move(*own);
    } else {
      DCP_ASSIGN_OR_RETURN(f, manifest::DecodeManifestPayload(payloads[r], "fragment of rank " + std::to_string(r)));
    }
    for (manifest::TensorEntry& t : f.tensors) {
      auto it = position.find(t.key);
      if (it == position.end()) {
        return Status::Internal("rank " + std::to_string(r) + " wrote chunks of undeclared tensor '" + t.key + "'");
      }
      auto& chunks = m.tensors[it->second].chunks;
      chunks.insert(chunks.end(), std::make_move_iterator(t.chunks.begin()), std::make_move_iterator(t.chunks.end()));
    }
    for (manifest::ObjectEntry& o : f.objects) m.objects.push_back(std::move(o));
  }
  m.Canonicalize();
  m.commit_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  // A violated invariant here is a bug in dcp, caught before it reaches disk.
  if (Status s = manifest::CheckManifestInvariants(m); !s.ok()) {
    return Status::Internal("refusing to publish an inconsistent manifest: " + s.message());
  }
  return m;
}

Status CommitStep(Communicator* comm, const CommitRequest& request, const Status& local_status,
                  manifest::StepManifest fragment) {
  const bool send = local_status.ok() && comm->rank() != 0;  // rank 0 merges its own as it is
  const std::string mine = EncodeCommitMessage(local_status, send ? manifest::EncodeManifestPayload(fragment) : "");
  std::vector<std::string> messages;
  DCP_RETURN_IF_ERROR(comm->Gather(0, mine, &messages));
  std::string outcome;
  if (comm->rank() == 0) outcome = wire::Writer().PutStatus(MergeAndPublish(request, messages, &fragment)).Finish();
  DCP_RETURN_IF_ERROR(comm->Broadcast(0, &outcome));
  wire::Reader in(outcome, "commit outcome from rank 0");
  Status published = in.GetStatus();
  DCP_RETURN_IF_ERROR(in.Finish());
  return published;
}

}  // namespace dcp::protocol
