// Copyright (c) dcp authors.
//
// StoreContext: what one process holds of an open store, shared by the
// collective protocols (put.h, load.h, maintenance.h): the root, the writer
// lock (rank 0), this rank's writer instance, read access to every rank
// store, which base records an incremental put may reference, the store's
// thread pools, and the last manifest loaded.
//
// OpenStore is the open protocol: rank 0 creates (or checks) the root and
// takes the writer lock; every rank then checks that it sees the store and
// opens its own rank store; two agreements, the second carrying each rank's
// host (base::HostIdentity) to count the ranks that share this host's cores.
//
// Thread safety: the handles are set at open and not changed after, except
// `stores`, which garbage collection replaces (no get may run meanwhile: the
// facade's calls on one store are not concurrent, an async put's thread
// aside, which never touches `stores`' pointer). IndexFromBytes and the pool
// accessors may be called concurrently.

#ifndef DCP_ENGINE_PROTOCOL_STORE_CONTEXT_H_
#define DCP_ENGINE_PROTOCOL_STORE_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "dcp/communicator.h"
#include "dcp/options.h"
#include "dcp/status.h"
#include "engine/base/thread_pool.h"
#include "engine/query/chunk_index.h"
#include "engine/query/record_check.h"
#include "engine/query/store_set.h"
#include "engine/store/rank_store.h"
#include "engine/store/store_lock.h"

namespace dcp::protocol {

class StoreContext {
 public:
  // `backend` (not owned; outlives the context) opens the rank stores.
  StoreContext(std::string root, const StoreOptions& options,
               storage::RankStoreBackend* backend = storage::DefaultBackend());
  ~StoreContext();
  StoreContext(const StoreContext&) = delete;
  StoreContext& operator=(const StoreContext&) = delete;

  const std::string& root() const { return root_; }
  const StoreOptions& options() const { return options_; }
  storage::RankStoreBackend* backend() const { return backend_; }

  // This rank's writer instance; null if the store was opened read-only.
  storage::RankStore* own() const { return own_.get(); }
  // Read access to every rank store (this rank's through `own`).
  query::StoreSet* stores() const { return stores_.get(); }
  // Drops the read instances (they keep every table file they have seen
  // open): after a garbage collection, so that deleted files free their space.
  void ReopenStores();

  // Which base records an incremental put may reference.
  query::RecordCheck& record_check() { return record_check_; }

  // The store's threads, kept across calls: encoding and snapshots (puts,
  // including an async put's thread, which runs while no other put can), and
  // reads (gets, on the caller's thread). `requested` as
  // base::ResolveThreadCount, with this host's share of the cores divided
  // among the store's ranks on it.
  base::ThreadPool* WritePool(int requested);
  base::ThreadPool* ReadPool(int requested);
  // How many of the store's ranks run on this host (this one included),
  // counted at open.
  int ranks_on_host() const { return ranks_on_host_; }
  // Rank 0's catalog.h LatestStep (or its error) when the store opened, the
  // same on every rank: carried by the open's last round, so that a call
  // that opens a store and then saves the next step or loads the latest asks
  // no round of its own. Not updated by later commits or deletions.
  const Result<std::optional<uint64_t>>& latest_at_open() const { return latest_at_open_; }

  // The verified manifest of `step` from its file's bytes, and its index;
  // the last one is kept and returned again for the same bytes (by checksum).
  Result<std::shared_ptr<query::StepIndex>> IndexFromBytes(uint64_t step, std::string_view bytes);

 private:
  friend Result<std::unique_ptr<StoreContext>> OpenStore(Communicator*, const std::string&, const StoreOptions&,
                                                         storage::RankStoreBackend*);

  const std::string root_;
  const StoreOptions options_;
  storage::RankStoreBackend* const backend_;
  std::unique_ptr<storage::WriterLock> lock_;  // rank 0 of a writable store
  std::unique_ptr<storage::RankStore> own_;
  std::unique_ptr<query::StoreSet> stores_;
  query::RecordCheck record_check_;
  base::PoolCache write_pools_;
  base::PoolCache read_pools_;
  int ranks_on_host_ = 1;
  Result<std::optional<uint64_t>> latest_at_open_ = std::optional<uint64_t>();

  std::mutex cache_mu_;
  uint64_t cached_checksum_ = 0;               // guarded by cache_mu_
  std::shared_ptr<query::StepIndex> cached_;  // guarded by cache_mu_
};

// Collective over `comm`: opens (with StoreOptions::create_if_missing,
// creates) the store at `root`, its rank stores through `backend` (tests
// hand in a fault-injecting one). The same status on every rank.
Result<std::unique_ptr<StoreContext>> OpenStore(Communicator* comm, const std::string& root,
                                                const StoreOptions& options,
                                                storage::RankStoreBackend* backend = storage::DefaultBackend());

// Rank 0's catalog.h LatestStep result as a round carries it to every rank
// (the open's last round, Store::AgreedLatestStep's): wire::EncodeResult of
// its status and, where a step is committed, the step (u64). Decoding gives
// back the error as it was, or the step, or nullopt for an empty store.
std::string EncodeLatestStep(const Result<std::optional<uint64_t>>& latest);
Result<std::optional<uint64_t>> DecodeLatestStep(std::string_view bytes);

}  // namespace dcp::protocol

#endif  // DCP_ENGINE_PROTOCOL_STORE_CONTEXT_H_
