// Copyright (c) dcp authors.
//
// Store::Impl: the state behind the public Store facade, and the collective
// protocols of Put (store_put.cc) and Get (store_get.cc).
//
// Collective discipline: every rank runs the same sequence of collectives
// whatever happens locally; a local error is carried to the next agreement
// point (coord/agreement.h) and all ranks return there together.

#ifndef DCP_API_SRC_STORE_IMPL_H_
#define DCP_API_SRC_STORE_IMPL_H_

#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "dcp/store.h"
#include "engine/base/thread_pool.h"
#include "engine/manifest/manifest.h"
#include "engine/query/chunk_index.h"
#include "engine/query/record_check.h"
#include "engine/query/store_set.h"
#include "engine/store/rank_store.h"
#include "engine/store/store_lock.h"
#include "engine/write/snapshot.h"

namespace dcp {

class Store::Impl {
 public:
  std::string root;
  Communicator* comm = nullptr;
  std::unique_ptr<Communicator> self_comm;  // when the caller passed none
  StoreOptions options;
  std::unique_ptr<storage::WriterLock> lock;  // rank 0 of a writable store
  // Opens the rank stores (RocksDB; no public option chooses another yet).
  storage::RankStoreBackend* backend = storage::DefaultBackend();
  std::unique_ptr<storage::RankStore> own;  // this rank's writer instance (null if read-only)
  std::unique_ptr<query::StoreSet> stores;
  // Which base records an incremental put may reference.
  query::RecordCheck record_check;

  // The store's threads, kept across calls: encoding and snapshots (puts,
  // including the async put's thread, which runs while no other put can),
  // and reads (gets, on the caller's thread).
  base::ThreadPool* WritePool(int requested) { return write_pools_.Get(base::ResolveThreadCount(requested)); }
  base::ThreadPool* ReadPool(int requested) { return read_pools_.Get(base::ResolveThreadCount(requested)); }

  Impl();
  ~Impl();

  // The put protocol over `c` (the store's communicator, or its duplicate on
  // the background thread of an async put), as a write session.
  Status Put(Communicator* c, uint64_t step, const StateDict& state, const SaveOptions& options,
             SaveReport* report);
  Status BeginStep(Communicator* c, uint64_t step, const SaveOptions& options);
  Status PutPart(Communicator* c, const StateDict& part, SaveReport* report);
  Status CommitStep(Communicator* c, SaveReport* report);
  Status AbortStep(Communicator* c);

  // Maintenance (store_maintenance.cc).
  Status DeleteStep(uint64_t step);
  Result<std::vector<uint64_t>> ApplyRetention(const RetentionPolicy& policy);
  Status CollectGarbage(GcReport* report, const GcOptions& options);
  Result<std::vector<std::string>> RemoveTensors(uint64_t step, std::string_view key_prefix,
                                                 const RemoveTensorsOptions& options);
  Status PutAsync(uint64_t step, const StateDict& state, const SaveOptions& options);
  Status WaitForPut(SaveReport* report);
  std::optional<Status> PollPut(SaveReport* report);
  Result<LoadResult> Get(uint64_t step, StateDict* request, const LoadOptions& options);
  Status Read(uint64_t step, std::string_view key, const Box& region, const TensorView& dest,
              const LoadOptions& options);

  // `s`, or NotFound if it is data loss and `step` is no longer committed (a
  // step deleted under a reader loses its records; that is not damage).
  Status DeletedWhileRead(uint64_t step, Status s) const;

  // The verified manifest of `step` and its index, read by this process alone.
  Result<std::shared_ptr<query::StepIndex>> LoadStepLocal(uint64_t step);
  // Collective: rank 0 reads the manifest file and broadcasts its bytes; every
  // rank verifies them (deterministically, so all get the same status).
  Result<std::shared_ptr<query::StepIndex>> LoadStepCollective(uint64_t step);

 private:
  // An open write session (BeginStep .. CommitStep / AbortStep).
  struct Session {
    Communicator* comm = nullptr;
    uint64_t step = 0;
    uint64_t generation = 0;
    SaveOptions options;
    std::shared_ptr<const manifest::StepManifest> base;    // incremental base (may be null)
    std::map<std::string, manifest::TensorEntry> tensors;  // keys written so far (every rank)
    std::set<std::string> object_cells;
    manifest::StepManifest fragment;  // this rank's chunks and objects
    Value common = Value::Map();      // rank 0: the merged common state
    std::string common_encoded;       // rank 0, one part: its common state, encoded
    uint32_t parts = 0;
    Status broken;  // a failed write ends the session
    SaveReport report;
  };
  // FailedPrecondition if `c` may not write now (read-only store, or an async
  // put in flight on the caller's communicator).
  Status Busy(Communicator* c) const;
  // PutPart after its Busy agreement. With `unagreed` (Put), this rank's write
  // outcome is left there for the commit's gather instead of being agreed on.
  Status WritePart(Communicator* c, const StateDict& part, SaveReport* report, Status* unagreed);
  // CommitStep after its agreement: merges and publishes; `written` is this
  // rank's unagreed write outcome (Put) or OK.
  Status Commit(Communicator* c, const Status& written, SaveReport* report);

  std::unique_ptr<Session> session_;  // the open write session, if any

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

  Result<std::shared_ptr<query::StepIndex>> FromBytes(uint64_t step, const std::string& bytes);

  base::PoolCache write_pools_;
  base::PoolCache read_pools_;

  std::mutex cache_mu_;
  uint64_t cached_checksum_ = 0;
  std::shared_ptr<query::StepIndex> cached_;  // the last step loaded, by file checksum
};

}  // namespace dcp

#endif  // DCP_API_SRC_STORE_IMPL_H_
