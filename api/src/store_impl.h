// Copyright (c) dcp authors.
//
// Store::Impl: the state behind the public Store facade. The protocols live
// in engine/protocol (put.h, load.h, maintenance.h over a StoreContext);
// the facade keeps what belongs to the caller's use of one store object:
// its communicator, the open write session, and the async put in flight.

#ifndef DCP_API_SRC_STORE_IMPL_H_
#define DCP_API_SRC_STORE_IMPL_H_

#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "dcp/store.h"
#include "engine/protocol/put.h"
#include "engine/protocol/store_context.h"
#include "engine/write/snapshot.h"

namespace dcp {

class Store::Impl {
 public:
  Communicator* comm = nullptr;
  std::unique_ptr<Communicator> self_comm;  // when the caller passed none
  std::unique_ptr<protocol::StoreContext> store;
  std::unique_ptr<protocol::PutSession> session;  // the open write session, if any

  ~Impl();

  // FailedPrecondition if `c` may not write now (read-only store, or an async
  // put in flight on the caller's communicator).
  Status Busy(Communicator* c) const;
  // Busy, or a write session is open.
  Status BusyOrInSession(Communicator* c, const char* why) const;

  // Async put (store_async.cc).
  Status PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options, const Status& local);
  Status WaitForPut(SaveReport* report);
  std::optional<Status> PollPut(SaveReport* report);

 private:
  // An async put from PutAsync until its outcome is collected.
  struct AsyncPut {
    uint64_t step = 0;
    std::thread thread;
    std::mutex mu;
    bool done = false;  // guarded by mu
    Status outcome;     // guarded by mu
    SaveReport report;  // guarded by mu
  };
  Status Collect(SaveReport* report);

  std::unique_ptr<Communicator> async_comm_;  // duplicate of comm for background collectives
  write::Snapshot snapshot_;                  // staging of the async put (reused)
  std::unique_ptr<AsyncPut> async_;
  // The outcome of the last async put once collected, so that WaitForPut on
  // a rank that already collected it with PollPut returns it again.
  std::optional<std::pair<Status, SaveReport>> last_outcome_;
};

}  // namespace dcp

#endif  // DCP_API_SRC_STORE_IMPL_H_
