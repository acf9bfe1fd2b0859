// Copyright (c) dcp authors.

#include "engine/coord/agreement.h"

#include <utility>
#include <vector>

#include "engine/wire/wire.h"

namespace dcp::coord {

Status AgreeAndGather(Communicator* comm, const Status& local, std::string_view payload,
                      std::vector<std::string>* payloads) {
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(comm->AllGather(wire::EncodeResult(local, payload), &all));
  std::vector<Status> statuses;
  statuses.reserve(all.size());
  payloads->assign(all.size(), std::string());
  for (size_t r = 0; r < all.size(); ++r) {
    // Every rank decodes the same bytes: a malformed one is the same error
    // everywhere, and CombineStatuses names its rank (no string per rank
    // here: at thousands of ranks this loop runs in every agreement).
    auto got = wire::DecodeResult(all[r], "status message");
    if (got.ok()) (*payloads)[r] = std::move(got).value();
    statuses.push_back(got.status());
  }
  Status agreed = CombineStatuses(statuses);
  if (!agreed.ok()) payloads->clear();
  return agreed;
}

Status AgreeOnStatus(Communicator* comm, const Status& local) {
  std::vector<std::string> payloads;
  return AgreeAndGather(comm, local, std::string_view(), &payloads);
}

Status AgreeOnCall(Communicator* comm, const Status& local, std::string_view call, std::string_view what) {
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(comm->AllGather(wire::Writer().PutStatus(local).Raw(call).Finish(), &all));
  std::vector<Status> statuses;
  std::vector<std::string_view> calls;
  statuses.reserve(all.size());
  calls.reserve(all.size());
  for (const std::string& message : all) {
    wire::Reader in(message, "call message");
    statuses.push_back(in.GetStatus());
    calls.push_back(in.Rest());
    if (Status s = in.Finish(); !s.ok()) statuses.back() = s;
  }
  for (size_t r = 1; r < calls.size(); ++r) {
    if (calls[r] != calls[0]) {
      return Status::InvalidArgument("rank " + std::to_string(r) + " calls " + std::string(calls[r]) + " but rank 0 " +
                                     std::string(calls[0]) + ": every rank must make the same call");
    }
  }
  Status agreed = CombineStatuses(statuses);
  return what.empty() ? agreed : agreed.Annotate(what);
}

Result<std::string> BroadcastResult(Communicator* comm, int root, Result<std::string> on_root) {
  std::string message;
  if (comm->rank() == root) {
    message = wire::EncodeResult(on_root.status(), on_root.ok() ? std::string_view(*on_root) : std::string_view());
  }
  DCP_RETURN_IF_ERROR(comm->Broadcast(root, &message));
  return wire::DecodeResult(message, "result broadcast by rank " + std::to_string(root));
}

Status CombineStatuses(const std::vector<Status>& all) {
  int first = -1;
  int failed = 0;
  bool identical = true;
  Status first_status;
  for (int r = 0; r < static_cast<int>(all.size()); ++r) {
    const Status& s = all[r];
    if (s.ok()) continue;
    ++failed;
    if (first < 0) {
      first = r;
      first_status = s;
    } else if (!(s == first_status)) {
      identical = false;
    }
  }
  if (first < 0) return Status::OK();
  if (identical && failed == static_cast<int>(all.size())) return first_status;
  std::string msg = "rank " + std::to_string(first) + ": " + first_status.message();
  if (failed > 1) msg += " (" + std::to_string(failed) + " ranks failed; the lowest is shown)";
  return Status(first_status.code(), std::move(msg));
}

}  // namespace dcp::coord
