// Copyright (c) dcp authors.
//
// The Store facade: checks what the caller may do with this store object now
// (read-only, a write session or an async put open) and forwards to the
// protocols in engine/protocol, which agree on that verdict with the other
// ranks before anything changes.

#include "dcp/store.h"

#include "api/src/store_impl.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/protocol/load.h"
#include "engine/protocol/maintenance.h"
#include "engine/store/catalog.h"

namespace dcp {

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::root() const { return impl_->store->root(); }

Result<std::unique_ptr<Store>> Store::Open(const std::string& root, Communicator* comm, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (comm == nullptr) {
    impl->self_comm = NewSelfCommunicator();
    comm = impl->self_comm.get();
  }
  impl->comm = comm;
  DCP_ASSIGN_OR_RETURN(impl->store, protocol::OpenStore(comm, root, options));
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::Impl::Busy(Communicator* c) const {
  if (store->own() == nullptr) {
    return Status::FailedPrecondition("store '" + store->root() + "' was opened read-only");
  }
  // The async put's own thread (c == async_comm_) never reads async_: the
  // caller's thread sets it once that thread runs (TSan found the race).
  if (c == comm && async_ != nullptr) {
    return Status::FailedPrecondition("an async put of step " + std::to_string(async_->step) +
                                      " has not been collected (call WaitForPut first)");
  }
  return Status::OK();
}

Status Store::Impl::BusyOrInSession(Communicator* c, const char* why) const {
  DCP_RETURN_IF_ERROR(Busy(c));
  if (session != nullptr) {
    return Status::FailedPrecondition("a write session for step " + std::to_string(session->step) + " is open" + why);
  }
  return Status::OK();
}

Status Store::Put(uint64_t step, const StateDict& state, const SaveOptions& options, SaveReport* report,
                  const Status& local) {
  Impl& i = *impl_;
  return protocol::Put(i.comm, i.store.get(), step, state, options,
                       local.ok() ? i.BusyOrInSession(i.comm, " (CommitStep or AbortStep first)") : local, report);
}

Status Store::BeginStep(uint64_t step, const SaveOptions& options, const Status& local) {
  Impl& i = *impl_;
  DCP_ASSIGN_OR_RETURN(i.session,
                       protocol::BeginStep(i.comm, i.store.get(), step, options,
                                           local.ok() ? i.BusyOrInSession(i.comm, " (CommitStep or AbortStep first)")
                                                      : local,
                                           "BeginStep"));
  return Status::OK();
}

Status Store::PutPart(const StateDict& part, SaveReport* report, const Status& local) {
  Impl& i = *impl_;
  // Agreed first: when busy, the session belongs to the async put's thread.
  // A refused part (`local`) leaves the session as it was.
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(i.comm, local.ok() ? i.Busy(i.comm) : local, "PutPart", "put"));
  return protocol::WritePart(i.comm, i.store.get(), i.session.get(), part, Status::OK(), report, nullptr);
}

Status Store::CommitStep() {
  Impl& i = *impl_;
  Status local = i.Busy(i.comm);
  if (local.ok() && i.session == nullptr) local = Status::FailedPrecondition("no write session is open (BeginStep first)");
  if (local.ok() && !i.session->broken.ok()) {
    local = Status::FailedPrecondition("the write session failed (" + i.session->broken.message() +
                                       "); AbortStep and start again");
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(i.comm, local, "CommitStep", "commit"));
  return protocol::Commit(i.store.get(), std::move(i.session), Status::OK(), nullptr);
}

Status Store::AbortStep() {
  Impl& i = *impl_;
  Status local = i.Busy(i.comm);
  if (local.ok() && i.session == nullptr) local = Status::FailedPrecondition("no write session is open");
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(i.comm, local, "AbortStep", "abort"));
  i.session.reset();  // its records are garbage for CollectGarbage
  return Status::OK();
}

Status Store::PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options, const Status& local) {
  return impl_->PutAsync(step, state, options, local);
}

Status Store::WaitForPut(SaveReport* report) { return impl_->WaitForPut(report); }

std::optional<Status> Store::PollPut(SaveReport* report) { return impl_->PollPut(report); }

Result<LoadResult> Store::Get(uint64_t step, StateDict* request, const LoadOptions& options, const Status& local) {
  return protocol::Get(impl_->comm, impl_->store.get(), step, request, options, local);
}

Status Store::Read(uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
                   const LoadOptions& options) {
  return protocol::Read(impl_->store.get(), step, key, region, dest, options);
}

Result<PlainState> Store::LoadPlain(uint64_t step, const std::vector<std::string>& keys, const LoadOptions& options) {
  return protocol::LoadPlain(impl_->store.get(), step, keys, options);
}

Result<std::vector<std::string>> Store::RemoveTensors(uint64_t step, std::string_view key_prefix,
                                                      const RemoveTensorsOptions& options, const Status& local) {
  Impl& i = *impl_;
  return protocol::RemoveTensors(i.comm, i.store.get(), step, key_prefix, options,
                                 local.ok() ? i.BusyOrInSession(i.comm, "") : local);
}

Status Store::DeleteStep(uint64_t step, const Status& local) {
  Impl& i = *impl_;
  return protocol::DeleteStep(i.comm, i.store.get(), step, local.ok() ? i.Busy(i.comm) : local);
}

Result<std::vector<uint64_t>> Store::ApplyRetention(const RetentionPolicy& policy, const Status& local) {
  Impl& i = *impl_;
  return protocol::ApplyRetention(i.comm, i.store.get(), policy, local.ok() ? i.Busy(i.comm) : local);
}

Status Store::CollectGarbage(GcReport* report, const GcOptions& options, const Status& local) {
  Impl& i = *impl_;
  return protocol::CollectGarbage(
      i.comm, i.store.get(), options,
      local.ok() ? i.BusyOrInSession(i.comm, "; its records are not committed yet") : local, report);
}

Result<std::vector<uint64_t>> Store::Steps() const { return storage::ListSteps(impl_->store->root()); }

Result<std::optional<uint64_t>> Store::LatestStep() const { return storage::LatestStep(impl_->store->root()); }

Result<std::optional<uint64_t>> Store::AgreedLatestStep() {
  Communicator* comm = impl_->comm;
  // Rank 0's result rides on an agreement named by the call, the first round
  // of every collective call (coord/agreement.h), not on a broadcast: a rank
  // here while another is in a get or a put fails every rank by name. Its
  // error comes back as it is, on every rank.
  const std::string mine = comm->rank() == 0 ? protocol::EncodeLatestStep(LatestStep()) : std::string();
  std::vector<std::string> all;
  DCP_RETURN_IF_ERROR(coord::AgreeAndGather(comm, Status::OK(), mine, &all, {}, "AgreedLatestStep"));
  return protocol::DecodeLatestStep(all[0]);
}

const Result<std::optional<uint64_t>>& Store::LatestStepAtOpen() const { return impl_->store->latest_at_open(); }

Result<StepMetadata> Store::Metadata(uint64_t step) const {
  DCP_ASSIGN_OR_RETURN(auto index, protocol::LoadStepLocal(impl_->store.get(), step));
  return manifest::Describe(index->manifest());
}

}  // namespace dcp
