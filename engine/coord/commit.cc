// Copyright (c) dcp authors.

#include "engine/coord/commit.h"

#include <chrono>
#include <cstring>
#include <map>

#include "engine/base/fault_injection.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"

namespace dcp::coord {
namespace {

// Envelope: [u64 status length][status][fragment payload].
std::string Pack(const Status& status, const std::string& fragment) {
  const std::string s = EncodeStatus(status);
  const uint64_t n = s.size();
  std::string out(sizeof(n), '\0');
  std::memcpy(out.data(), &n, sizeof(n));
  out += s;
  out += fragment;
  return out;
}

Status Unpack(const std::string& bytes, int from, Status* status, std::string_view* fragment) {
  uint64_t n = 0;
  if (bytes.size() < sizeof(n)) return Status::Internal("malformed commit message from rank " + std::to_string(from));
  std::memcpy(&n, bytes.data(), sizeof(n));
  if (n > bytes.size() - sizeof(n)) {
    return Status::Internal("malformed commit message from rank " + std::to_string(from));
  }
  *status = DecodeStatus(std::string_view(bytes).substr(sizeof(n), n));
  *fragment = std::string_view(bytes).substr(sizeof(n) + n);
  return Status::OK();
}

// Rank 0: merge and publish.
Status MergeAndPublish(const CommitRequest& request, const std::vector<std::string>& messages) {
  std::vector<Status> statuses(messages.size());
  std::vector<std::string_view> fragments(messages.size());
  for (size_t r = 0; r < messages.size(); ++r) {
    DCP_RETURN_IF_ERROR(Unpack(messages[r], static_cast<int>(r), &statuses[r], &fragments[r]));
  }
  DCP_RETURN_IF_ERROR(CombineStatuses(statuses));

  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, MergeFragments(request.skeleton, fragments));
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("put.before_publish", 0));
  return storage::PublishManifest(request.root, m.step, m.generation, manifest::EncodeManifest(m));
}

}  // namespace

Result<manifest::StepManifest> MergeFragments(const manifest::StepManifest& skeleton,
                                              const std::vector<std::string_view>& payloads) {
  manifest::StepManifest m = skeleton;
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < m.tensors.size(); ++i) position[m.tensors[i].key] = i;
  for (size_t r = 0; r < payloads.size(); ++r) {
    // FlatBuffers reads its scalars in place, so the payload must start on an
    // 8-byte boundary; inside the commit envelope it follows the status.
    const std::string aligned(payloads[r]);
    DCP_ASSIGN_OR_RETURN(manifest::StepManifest f,
                         manifest::DecodeManifestPayload(aligned, "fragment of rank " + std::to_string(r)));
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
                  const manifest::StepManifest& fragment) {
  const std::string mine = Pack(local_status, local_status.ok() ? manifest::EncodeManifestPayload(fragment) : "");
  std::vector<std::string> messages;
  DCP_RETURN_IF_ERROR(comm->Gather(0, mine, &messages));
  std::string outcome;
  if (comm->rank() == 0) outcome = EncodeStatus(MergeAndPublish(request, messages));
  DCP_RETURN_IF_ERROR(comm->Broadcast(0, &outcome));
  return DecodeStatus(outcome);
}

}  // namespace dcp::coord
