// Copyright (c) dcp authors.

#include "dcp/store.h"

#include <cstring>

#include "api/src/store_impl.h"
#include "engine/codec/checksum.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"

namespace dcp {

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::root() const { return impl_->root; }

Result<std::unique_ptr<Store>> Store::Open(const std::string& root, Communicator* comm, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->root = root;
  impl->options = options;
  if (comm == nullptr) {
    impl->self_comm = NewSelfCommunicator();
    comm = impl->self_comm.get();
  }
  impl->comm = comm;

  // Rank 0 creates (or checks) the root; then every rank checks that it sees
  // the store and opens its own rank store.
  Status s;
  if (comm->rank() == 0) {
    if (options.read_only || !options.create_if_missing) s = storage::CheckStoreRoot(root);
    else s = storage::CreateOrCheckStoreRoot(root);
    if (s.ok() && !options.read_only) {
      auto lock = storage::WriterLock::Acquire(root, options.lock_wait_ms);
      if (lock.ok()) impl->lock = std::move(lock).value();
      else s = lock.status();
    }
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, s));
  s = storage::CheckStoreRoot(root);
  if (s.ok() && !options.read_only) {
    const uint32_t rank = static_cast<uint32_t>(comm->rank());
    auto own = impl->backend->Open(storage::RankStorePath(root, rank), rank, storage::RankStore::Mode::kWrite,
                                   storage::RankStoreOptions{.repair = options.repair});
    if (own.ok()) impl->own = std::move(own).value();
    else s = own.status();
  }
  DCP_RETURN_IF_ERROR(coord::AgreeOnStatus(comm, s));
  impl->stores = std::make_unique<query::StoreSet>(root, impl->own.get(), impl->backend);
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::Put(uint64_t step, const StateDict& state, const SaveOptions& options, SaveReport* report) {
  return impl_->Put(impl_->comm, step, state, options, report);
}

Status Store::BeginStep(uint64_t step, const SaveOptions& options) {
  return impl_->BeginStep(impl_->comm, step, options);
}
Status Store::PutPart(const StateDict& part, SaveReport* report) { return impl_->PutPart(impl_->comm, part, report); }
Status Store::CommitStep() { return impl_->CommitStep(impl_->comm, nullptr); }
Status Store::AbortStep() { return impl_->AbortStep(impl_->comm); }
Status Store::DeleteStep(uint64_t step) { return impl_->DeleteStep(step); }
Result<std::vector<uint64_t>> Store::ApplyRetention(const RetentionPolicy& policy) {
  return impl_->ApplyRetention(policy);
}
Status Store::CollectGarbage(GcReport* report, const GcOptions& options) {
  return impl_->CollectGarbage(report, options);
}

Status Store::PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options) {
  return impl_->PutAsync(step, state, options);
}

Status Store::WaitForPut(SaveReport* report) { return impl_->WaitForPut(report); }

std::optional<Status> Store::PollPut(SaveReport* report) { return impl_->PollPut(report); }

Result<LoadResult> Store::Get(uint64_t step, StateDict* request, const LoadOptions& options) {
  return impl_->Get(step, request, options);
}

Status Store::Read(uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
                   const LoadOptions& options) {
  return impl_->Read(step, key, region, dest, options);
}

Result<std::vector<uint64_t>> Store::Steps() const { return storage::ListSteps(impl_->root); }

Result<std::optional<uint64_t>> Store::LatestStep() const { return storage::LatestStep(impl_->root); }

Result<StepMetadata> Store::Metadata(uint64_t step) const {
  DCP_ASSIGN_OR_RETURN(auto index, impl_->LoadStepLocal(step));
  return manifest::Describe(index->manifest());
}

Result<std::shared_ptr<query::StepIndex>> Store::Impl::FromBytes(uint64_t step, const std::string& bytes) {
  const uint64_t checksum = codec::Checksum64(bytes.data(), bytes.size());
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cached_ && cached_checksum_ == checksum && cached_->manifest().step == step) return cached_;
  }
  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, manifest::DecodeManifest(bytes, storage::ManifestPath(root, step)));
  if (m.step != step) {
    return Status::DataLoss("manifest '" + storage::ManifestPath(root, step) + "' describes step " +
                            std::to_string(m.step));
  }
  auto index = std::make_shared<query::StepIndex>(std::make_shared<const manifest::StepManifest>(std::move(m)));
  std::lock_guard<std::mutex> lock(cache_mu_);
  cached_ = index;
  cached_checksum_ = checksum;
  return index;
}

Result<std::shared_ptr<query::StepIndex>> Store::Impl::LoadStepLocal(uint64_t step) {
  DCP_RETURN_IF_ERROR(storage::CheckStepIntact(root, step));
  DCP_ASSIGN_OR_RETURN(std::string bytes, storage::ReadManifestFile(root, step));
  return FromBytes(step, bytes);
}

Result<std::shared_ptr<query::StepIndex>> Store::Impl::LoadStepCollective(uint64_t step) {
  // Rank 0 reads the manifest; every rank gets it, or why it could not be read.
  Result<std::string> bytes = std::string();
  if (comm->rank() == 0) {
    Status intact = storage::CheckStepIntact(root, step);
    bytes = intact.ok() ? storage::ReadManifestFile(root, step) : Result<std::string>(intact);
  }
  DCP_ASSIGN_OR_RETURN(std::string manifest, coord::BroadcastResult(comm, 0, std::move(bytes)));
  return FromBytes(step, manifest);
}

}  // namespace dcp
