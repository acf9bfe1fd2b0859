// Copyright (c) dcp authors.

#include "engine/coord/agreement.h"

#include <cstring>
#include <vector>

namespace dcp::coord {

std::string EncodeStatus(const Status& s) {
  std::string out(sizeof(int32_t), '\0');
  const int32_t code = static_cast<int32_t>(s.code());
  std::memcpy(out.data(), &code, sizeof(code));
  out += s.message();
  return out;
}

Status DecodeStatus(std::string_view bytes) {
  if (bytes.size() < sizeof(int32_t)) return Status::Internal("malformed status message from a peer rank");
  int32_t code = 0;
  std::memcpy(&code, bytes.data(), sizeof(code));
  if (code == 0) return Status::OK();
  if (code < 0 || code > static_cast<int32_t>(StatusCode::kUnimplemented)) {
    return Status::Internal("peer rank sent unknown status code " + std::to_string(code));
  }
  return Status(static_cast<StatusCode>(code), std::string(bytes.substr(sizeof(int32_t))));
}

Status AgreeOnStatus(Communicator* comm, const Status& local) {
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(comm->AllGather(EncodeStatus(local), &all));
  std::vector<Status> statuses;
  statuses.reserve(all.size());
  for (const std::string& a : all) statuses.push_back(DecodeStatus(a));
  return CombineStatuses(statuses);
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
