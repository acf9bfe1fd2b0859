// Copyright (c) dcp authors.
//
// The async put: the caller's tensors are validated and copied (the
// snapshot, engine/write/snapshot.h) collectively, then protocol::Put runs on
// a thread of its own over a duplicate of the store's communicator, so its
// collectives never interleave with the caller's.

#include <exception>

#include "api/src/store_impl.h"
#include "engine/coord/agreement.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/validation.h"
#include "engine/wire/wire.h"

namespace dcp {

Store::Impl::~Impl() {
  if (async_ != nullptr && async_->thread.joinable()) async_->thread.join();
}

Status Store::Impl::PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options,
                             const Status& caller) {
  std::string what = "async put of step " + std::to_string(step);
  Status local = caller.ok() ? Busy(comm) : caller;
  if (local.ok() && async_ != nullptr) {
    local = Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                       " is still in flight (call WaitForPut first)");
  }
  if (local.ok() && session != nullptr) {
    local = Status::FailedPrecondition("a write session for step " + std::to_string(session->step) + " is open");
  }
  if (local.ok() && !comm->SupportsConcurrentDuplicates()) {
    local = Status::FailedPrecondition(
        "the communicator cannot run collectives on a background thread (MPI needs MPI_THREAD_MULTIPLE)");
  }
  // Factories are built now, while the caller's tensors may still be read;
  // the snapshot copies their pieces like any other tensor.
  StateDict expanded;
  std::vector<std::unique_ptr<FactoryArena>> factory_buffers;
  if (local.ok()) local = sharding::ExpandFactoriesForSave(state, &expanded, &factory_buffers);
  sharding::FlatState flat;
  if (local.ok()) local = sharding::FlattenForSave(expanded, &flat);
  if (local.ok()) local = sharding::ValidateLocalSave(flat);
  {
    // Each rank's step rides along: failures are named by rank 0's (ranks
    // whose steps differ fail in the put's first round, by name).
    std::vector<std::string> steps;
    Status agreed = coord::AgreeAndGather(comm, local, wire::Writer().U64(step).Finish(), &steps, {}, "PutAsync");
    what = "async put of step " + std::to_string(protocol::StepOfRank0(steps, step));
    // Without payloads: another call on some rank, or the transport (as is).
    if (!agreed.ok()) return steps.empty() ? agreed : agreed.Annotate(what);
  }

  if (async_comm_ == nullptr) {
    auto dup = comm->Duplicate();
    Status s = dup.status();
    if (dup.ok()) async_comm_ = std::move(dup).value();
    s = coord::AgreeOnStatus(comm, s, what);
    if (!s.ok()) {
      async_comm_.reset();  // every rank is back where it started
      return s;
    }
  }
  // The snapshot: after it, the caller's tensors are no longer read.
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(
      comm, snapshot_.Take(expanded, options.encode_threads, store->WritePool(options.encode_threads)), what));

  auto a = std::make_unique<AsyncPut>();
  a->step = step;
  AsyncPut* raw = a.get();
  try {
    a->thread = std::thread([this, raw, step, options] {
      SaveReport report;
      Status s;
      try {
        SaveOptions main_only = options;
        main_only.fully_parallel = false;  // the snapshot stages main replicas only
        s = protocol::Put(async_comm_.get(), store.get(), step, snapshot_.state(), main_only, Status::OK(),
                        &report);
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("async put failed: ") + e.what());
      }
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->outcome = std::move(s);
      raw->report = report;
      raw->done = true;
    });
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot start the async put's thread: ") + e.what());
  }
  async_ = std::move(a);
  last_outcome_.reset();
  return Status::OK();
}

Status Store::Impl::Collect(SaveReport* report) {
  async_->thread.join();
  last_outcome_ = std::make_pair(async_->outcome, async_->report);
  async_.reset();
  if (report != nullptr) *report = last_outcome_->second;
  return last_outcome_->first;
}

Status Store::Impl::WaitForPut(SaveReport* report) {
  if (async_ == nullptr) {
    if (!last_outcome_) return Status::FailedPrecondition("no async put to wait for");
    if (report != nullptr) *report = last_outcome_->second;  // collected already (PollPut)
    return last_outcome_->first;
  }
  return Collect(report);
}

std::optional<Status> Store::Impl::PollPut(SaveReport* report) {
  if (async_ == nullptr) {
    if (!last_outcome_) return Status::FailedPrecondition("no async put to poll");
    if (report != nullptr) *report = last_outcome_->second;
    return last_outcome_->first;
  }
  {
    std::lock_guard<std::mutex> lock(async_->mu);
    if (!async_->done) return std::nullopt;
  }
  return Collect(report);
}

}  // namespace dcp
