// Copyright (c) dcp authors.

#include "engine/protocol/store_context.h"

#include <algorithm>
#include <vector>

#include "engine/codec/checksum.h"
#include "engine/coord/agreement.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "engine/wire/wire.h"

namespace dcp::protocol {

StoreContext::StoreContext(std::string root, const StoreOptions& options, storage::RankStoreBackend* backend)
    : root_(std::move(root)), options_(options), backend_(backend) {}

StoreContext::~StoreContext() = default;

void StoreContext::ReopenStores() { stores_ = std::make_unique<query::StoreSet>(root_, own_.get(), backend_); }

base::ThreadPool* StoreContext::WritePool(int requested) {
  return write_pools_.Get(base::ResolveThreadCount(requested, ranks_on_host_));
}

base::ThreadPool* StoreContext::ReadPool(int requested) {
  return read_pools_.Get(base::ResolveThreadCount(requested, ranks_on_host_));
}

Result<std::shared_ptr<query::StepIndex>> StoreContext::IndexFromBytes(uint64_t step, std::string_view bytes) {
  const uint64_t checksum = codec::Checksum64(bytes.data(), bytes.size());
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cached_ && cached_checksum_ == checksum && cached_->manifest().step == step) return cached_;
  }
  const std::string path = storage::ManifestPath(root_, step);
  DCP_ASSIGN_OR_RETURN(manifest::StepManifest m, manifest::DecodeManifest(bytes, path));
  if (m.step != step) return Status::DataLoss("manifest '" + path + "' describes step " + std::to_string(m.step));
  auto index = std::make_shared<query::StepIndex>(std::make_shared<const manifest::StepManifest>(std::move(m)));
  std::lock_guard<std::mutex> lock(cache_mu_);
  cached_ = index;
  cached_checksum_ = checksum;
  return index;
}

std::string EncodeLatestStep(const Result<std::optional<uint64_t>>& latest) {
  std::string step;  // empty: no step committed
  if (latest.ok() && latest->has_value()) step = wire::Writer().U64(**latest).Finish();
  return wire::EncodeResult(latest.status(), step);
}

Result<std::optional<uint64_t>> DecodeLatestStep(std::string_view bytes) {
  DCP_ASSIGN_OR_RETURN(std::string got, wire::DecodeResult(bytes, "latest step from rank 0"));
  if (got.empty()) return std::optional<uint64_t>();
  wire::Reader in(got, "latest step from rank 0");
  const uint64_t step = in.U64();
  DCP_RETURN_IF_ERROR(in.Finish());
  return std::optional<uint64_t>(step);
}

Result<std::unique_ptr<StoreContext>> OpenStore(Communicator* comm, const std::string& root,
                                                const StoreOptions& options, storage::RankStoreBackend* backend) {
  auto store = std::make_unique<StoreContext>(root, options, backend);
  // Rank 0 creates (or checks) the root and takes the writer lock; then every
  // rank checks that it sees the store and opens its own rank store.
  Status s;
  if (comm->rank() == 0) {
    if (options.read_only || !options.create_if_missing) s = storage::CheckStoreRoot(root);
    else s = storage::CreateOrCheckStoreRoot(root);
    if (s.ok() && !options.read_only) {
      auto lock = storage::WriterLock::Acquire(root, options.lock_wait_ms);
      if (lock.ok()) store->lock_ = std::move(lock).value();
      else s = lock.status();
    }
  }
  // Before any rank store opens: a rank that would open its store for
  // writing while rank 0 took no writer lock (or the reverse), or repair
  // what the others leave alone, fails every rank instead.
  const std::string call = std::string("Open(") + (options.read_only ? "read_only" : "read-write") +
                           (options.repair ? ", repair)" : ", no repair)");
  DCP_RETURN_IF_ERROR(coord::AgreeOnCall(comm, s, call, ""));
  s = storage::CheckStoreRoot(root);
  if (s.ok() && !options.read_only) {
    const uint32_t rank = static_cast<uint32_t>(comm->rank());
    auto own = backend->Open(storage::RankStorePath(root, rank), rank, storage::RankStore::Mode::kWrite,
                             storage::RankStoreOptions{.repair = options.repair});
    if (own.ok()) store->own_ = std::move(own).value();
    else s = own.status();
  }
  // Riding along: which host each rank runs on, for the thread pools' share
  // of this host's cores, and from rank 0 its latest step (latest_at_open).
  wire::Writer mine;
  const std::string host = base::HostIdentity();
  mine.Bytes(host);
  if (comm->rank() == 0 && s.ok()) mine.Raw(EncodeLatestStep(storage::LatestStep(root)));
  std::vector<std::string> gathered;
  DCP_RETURN_IF_ERROR(coord::AgreeAndGather(comm, s, mine.Finish(), &gathered));
  // Every rank decodes the same messages: a malformed one fails every rank.
  int on_host = 0;
  for (size_t r = 0; r < gathered.size(); ++r) {
    wire::Reader in(gathered[r], "open message from rank " + std::to_string(r));
    const std::string_view their_host = in.Bytes();
    if (r == 0) store->latest_at_open_ = DecodeLatestStep(in.Rest());
    DCP_RETURN_IF_ERROR(in.Finish());
    if (their_host == host) ++on_host;
  }
  store->ranks_on_host_ = std::max(on_host, 1);
  store->ReopenStores();
  return store;
}

}  // namespace dcp::protocol
