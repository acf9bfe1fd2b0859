// Copyright (c) dcp authors.

#include "engine/coord/agreement.h"

#include <utility>
#include <vector>

#include "engine/wire/wire.h"

namespace dcp::coord {

namespace {

// Every agreement message starts with its kind, and a status agreement's
// with its call's name. Two different calls of the API at once on different
// ranks (PutPart on one, CollectGarbage on another, or Put and PutAsync) can
// meet in one all-gather; read as its own, the other's message would pass,
// and the ranks would go on into different collectives and wait for each
// other forever. With the kind and the name, every rank fails instead,
// wherever a call agreement meets a status agreement or two named status
// agreements of different calls meet. (A status agreement without a name,
// one after a call's first round, meets only its own call's.)
enum class Kind : uint8_t { kGather = 1, kCall = 2 };

struct Messages {
  std::vector<Kind> kinds;
  std::vector<std::string_view> calls;        // a call agreement's payload; a status agreement's name or ""
  std::vector<Status> statuses;               // a malformed message is its rank's failure
  std::vector<std::string_view> payloads;     // views into the gathered messages
  std::vector<bool> wellformed;
};

// All-gathers (kind, local, payload) and decodes every rank's message. Every
// rank decodes the same bytes, so what follows is the same on every rank (no
// string per rank here: at thousands of ranks this runs in every agreement).
Status Exchange(Communicator* comm, Kind kind, std::string_view call, const Status& local, std::string_view payload,
                std::vector<std::string>* all, Messages* m) {
  wire::Writer out;
  out.U8(static_cast<uint8_t>(kind));
  if (kind == Kind::kGather) out.Bytes(call);
  DCP_RETURN_IF_ERROR(comm->AllGather(out.PutStatus(local).Raw(payload).Finish(), all));
  const size_t n = all->size();
  m->kinds.assign(n, Kind::kGather);
  m->calls.assign(n, std::string_view());
  m->statuses.assign(n, Status::OK());
  m->payloads.assign(n, std::string_view());
  m->wellformed.assign(n, false);
  for (size_t r = 0; r < n; ++r) {
    wire::Reader in((*all)[r], "agreement message");
    const uint8_t k = in.U8();
    if (in.ok() && k != static_cast<uint8_t>(Kind::kGather) && k != static_cast<uint8_t>(Kind::kCall)) {
      in.Fail("unknown agreement kind " + std::to_string(k));
    }
    const std::string_view name = k == static_cast<uint8_t>(Kind::kGather) ? in.Bytes() : std::string_view();
    Status status = in.GetStatus();
    m->payloads[r] = in.Rest();
    if (Status s = in.Finish(); !s.ok()) {
      m->statuses[r] = s;
      continue;
    }
    m->kinds[r] = static_cast<Kind>(k);
    m->calls[r] = k == static_cast<uint8_t>(Kind::kCall) ? m->payloads[r] : name;
    m->statuses[r] = std::move(status);
    m->wellformed[r] = true;
  }
  return Status::OK();
}

// InvalidArgument if a rank is in another kind of agreement than the first
// rank with a well-formed message (rank 0 but for a bug), or in a status
// agreement of another named call, naming both.
Status SameCall(const Messages& m) {
  const auto what = [&](size_t r) {
    return m.calls[r].empty() ? std::string("makes another collective call") : "calls " + std::string(m.calls[r]);
  };
  size_t first = m.kinds.size();
  for (size_t r = 0; r < m.kinds.size(); ++r) {
    if (!m.wellformed[r]) continue;
    if (first == m.kinds.size()) {
      first = r;
    } else if (m.kinds[r] != m.kinds[first] ||
               (m.kinds[r] == Kind::kGather && !m.calls[r].empty() && !m.calls[first].empty() &&
                m.calls[r] != m.calls[first])) {
      return Status::InvalidArgument("rank " + std::to_string(r) + " " + what(r) + " but rank " +
                                     std::to_string(first) + " " + what(first) +
                                     ": every rank must make the same call");
    }
  }
  return Status::OK();
}

}  // namespace

Status AgreeAndGather(Communicator* comm, const Status& local, std::string_view payload,
                      std::vector<std::string>* payloads, std::string_view what, std::string_view call) {
  payloads->clear();
  std::vector<std::string> all;
  Messages m;
  if (Status s = Exchange(comm, Kind::kGather, call, local, payload, &all, &m); !s.ok()) {
    return what.empty() ? s : s.Annotate(what);
  }
  // Not annotated: a caller on another rank, in another call, would annotate
  // it with something else.
  DCP_RETURN_IF_ERROR(SameCall(m));
  payloads->reserve(all.size());
  for (std::string_view p : m.payloads) payloads->emplace_back(p);
  Status agreed = CombineStatuses(m.statuses);
  return what.empty() ? agreed : agreed.Annotate(what);
}

Status AgreeOnStatus(Communicator* comm, const Status& local, std::string_view what, std::string_view call) {
  std::vector<std::string> payloads;
  return AgreeAndGather(comm, local, std::string_view(), &payloads, what, call);
}

Status AgreeOnCall(Communicator* comm, const Status& local, std::string_view call, std::string_view what) {
  std::vector<std::string> all;
  Messages m;
  if (Status s = Exchange(comm, Kind::kCall, {}, local, call, &all, &m); !s.ok()) {
    return what.empty() ? s : s.Annotate(what);
  }
  DCP_RETURN_IF_ERROR(SameCall(m));
  size_t differs = 0;
  for (size_t r = 1; r < m.payloads.size() && differs == 0; ++r) {
    if (m.wellformed[r] && m.wellformed[0] && m.payloads[r] != m.payloads[0]) differs = r;
  }
  // A rank's own failure first: a rank whose arguments could not be
  // converted calls with placeholders, and its error says what is wrong.
  // `what` names the arguments: only where they are the same everywhere.
  Status agreed = CombineStatuses(m.statuses);
  if (!agreed.ok()) return differs == 0 && !what.empty() ? agreed.Annotate(what) : agreed;
  if (differs != 0) {
    return Status::InvalidArgument("rank " + std::to_string(differs) + " calls " + std::string(m.payloads[differs]) +
                                   " but rank 0 " + std::string(m.payloads[0]) +
                                   ": every rank must make the same call");
  }
  return agreed;
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
