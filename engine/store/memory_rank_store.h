// Copyright (c) dcp authors.
//
// MemoryBackend: rank stores held in process memory, for fast unit tests of
// the query and write paths (tensorstore's memory kvstore, leveldb's
// MemEnv). Nothing touches the disk; `path` is only a name.
//
// The backend owns one database per path: a sorted map from record key to
// value, shared by every instance opened on that path, so a writer and its
// readers see the same records. A committed bulk writer becomes one table
// file (TableFiles lists, per table, its smallest and largest key and the
// bytes of its records), so NewestGeneration, DropGeneration and garbage
// collection work as on RocksDB. BulkWriter::Commit inserts its records under
// the database's lock: readers see all of them or none. Read instances see
// every commit at once (CatchUp is a no-op); a second writer instance on a
// path gets IOError until the first is destroyed. CheckMetadata and Repair
// find nothing wrong: a memory store is never damaged (damage is the fault
// backend's business, fault_rank_store.h).
//
// Values are stored once and pinned by reference (PinnedValue holds a
// reference to the stored string): a Get copies nothing.
//
// Crash() simulates the death of every process using the stores: instances
// opened before it fail every later call with IOError (their writer locks
// are released), bulk writers that had not committed lose their records, and
// what was committed stays. A test then opens fresh instances on the same
// backend and checks what recovery finds.
//
// Thread safety: the backend and its stores are thread-safe (the contract of
// rank_store.h). Stores may outlive the backend object.

#ifndef DCP_ENGINE_STORE_MEMORY_RANK_STORE_H_
#define DCP_ENGINE_STORE_MEMORY_RANK_STORE_H_

#include <memory>
#include <string>

#include "engine/store/rank_store.h"

namespace dcp::storage {

class MemoryBackend : public RankStoreBackend {
 public:
  MemoryBackend();
  ~MemoryBackend() override;
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;

  std::string Name() const override { return "memory"; }
  Result<std::unique_ptr<RankStore>> Open(const std::string& path, uint32_t rank, RankStore::Mode mode,
                                          const RankStoreOptions& options) override;
  Status CheckMetadata(const std::string& path, uint32_t rank) override;
  Result<RankStore::RepairReport> Repair(const std::string& path, uint32_t rank) override;

  // See above: every instance opened so far is dead; committed records stay.
  void Crash();

  // Whether a store exists at `path` (a writer has opened it).
  bool Exists(const std::string& path) const;

  struct Shared;  // the databases, shared with the stores opened on them

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace dcp::storage

#endif  // DCP_ENGINE_STORE_MEMORY_RANK_STORE_H_
